import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';

/** One recorded answer: written in `pieces`, each its own socket write after a turn of the loop. */
export interface Recording {
  status?: number;
  statusText?: string;
  headers: Record<string, string>;
  pieces: Uint8Array[];
}

export interface ReplayServer {
  url: string;
  /** Request bodies received, in order. */
  requests: { path: string; headers: IncomingMessage['headers']; body: Buffer }[];
  close(): Promise<void>;
}

/**
 * A tiny server that answers every request to a path with the same recorded bytes, so the
 * bytes a raw `fetch` gets and the bytes `meter.fetch` hands its caller can be compared exactly
 * (the simulator's ids and timestamps differ per call). `redirects` answers 307 to another path.
 */
export async function startReplay(
  routes: Record<string, Recording | ((req: IncomingMessage, res: ServerResponse) => Promise<void> | void)>,
  redirects: Record<string, string> = {},
): Promise<ReplayServer> {
  const requests: ReplayServer['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://replay').pathname;
      requests.push({ path, headers: req.headers, body: Buffer.concat(chunks) });
      void answer(path, req, res);
    });
  });

  async function answer(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', () => {});
    const to = redirects[path];
    if (to) {
      res.writeHead(307, { location: to, 'content-length': '0' });
      res.end();
      return;
    }
    const route = routes[path];
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '9' });
      res.end('not found');
      return;
    }
    if (typeof route === 'function') {
      await route(req, res);
      return;
    }
    res.writeHead(route.status ?? 200, route.statusText ?? '', route.headers);
    for (const piece of route.pieces) {
      if (res.destroyed) return;
      res.write(piece);
      await tick();
    }
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Every byte of a body, read to its end. */
export async function bodyBytes(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}
