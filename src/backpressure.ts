import type { ServerResponse } from 'node:http';

/**
 * Resolves when an HTTP response can take more (`drain`) or is gone (`close`): what a writer
 * awaits after `write()` returned false, so a slow client holds back the producer instead of
 * filling memory (the gateway's streams, the API's CSV export).
 */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
