/**
 * WAL checkpoints on a worker thread.
 *
 * With synchronous=NORMAL a commit never fsyncs; a checkpoint does (the WAL, then the database
 * file). SQLite's automatic checkpoint runs inside whichever commit crosses 1000 WAL pages,
 * which here is the writer's microtask on the caller's event loop: measured, that adds a 5-20
 * ms fsync every few dozen small commits. So the writer turns automatic checkpoints off and a
 * worker thread, with its own connection, runs PASSIVE checkpoints (which never wait for, nor
 * block, readers and writers) on an interval. If the worker cannot start, the writer turns
 * automatic checkpoints back on.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface Checkpointer {
  close(): Promise<void>;
}

export const CHECKPOINT_INTERVAL_MS = 1_000;

/** Plain JS evaluated in the worker (a .ts file could not run there when tests run from src/). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or gone: the next interval tries again.
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  intervalMs?: number | undefined;
  onError?: ((error: unknown) => void) | undefined;
  /** The worker stopped without being closed: the writer must checkpoint again itself. */
  onStop?: (() => void) | undefined;
}

/** null when no worker could be started. */
export function startCheckpointer(path: string, options: CheckpointerOptions = {}): Checkpointer | null {
  let worker: Worker;
  try {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path,
        intervalMs: options.intervalMs ?? CHECKPOINT_INTERVAL_MS,
      },
    });
  } catch (error) {
    options.onError?.(error);
    return null;
  }
  let closing = false;
  worker.unref();
  worker.on('error', (error) => options.onError?.(error));
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      if (!closing) options.onStop?.();
      resolve();
    }),
  );
  return {
    async close() {
      closing = true;
      worker.postMessage('close');
      const timeout = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
