// The streaming server the benchmarks measure against: OpenAI chat-completion chunks as SSE,
// either stamped on a fixed schedule or as many megabytes as the client will read. It runs in a
// child process of its own, so its CPU time is not charged to the client under test.
import { createServer } from 'node:http';
import { nowNs } from './stats.mjs';

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const MiB = 1024 * 1024;

const chunk = (fields) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    ...fields,
  })}\n\n`;
const delta = (content, extra = {}) =>
  chunk({ choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }], ...extra });
const tail = (withUsage, outputTokens) =>
  chunk({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }) +
  (withUsage
    ? chunk({
        choices: [],
        usage: { prompt_tokens: 20, completion_tokens: outputTokens, total_tokens: 20 + outputTokens },
      })
    : '') +
  'data: [DONE]\n\n';

const PIECE_TOKENS = 160;
const PIECE = delta(' lorem'.repeat(PIECE_TOKENS));
/** Bytes in one chunk of a bulk stream: what a client that sees parsed chunks counts per chunk. */
export const PIECE_BYTES = Buffer.byteLength(PIECE);

/**
 * `chunks` chunks, one every `intervalMs` on a fixed schedule from the start (a late timer does
 * not shift every later chunk), each stamped with its index `i` and `t: stamp()`, written to every
 * response in `group` (which is written first alternates), then the finish and usage chunks.
 */
export async function writeStamped(group, { chunks, intervalMs, withUsage, stamp = nowNs }) {
  for (const res of group) res.writeHead(200, SSE_HEADERS);
  const start = performance.now();
  for (let i = 0; i < chunks; i++) {
    const wait = start + (i + 1) * intervalMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (group.every((res) => res.destroyed)) return;
    const text = delta(' tok', { i, t: stamp() });
    for (const res of i % 2 === 0 ? group : [...group].reverse()) res.write(text);
  }
  for (const res of group) res.end(tail(withUsage, chunks));
}

/** `megabytes` MB of chunks as fast as the client reads them (backpressure honoured), then usage. */
export async function writeBulk(res, megabytes, withUsage) {
  res.writeHead(200, SSE_HEADERS);
  const total = megabytes * MiB;
  let sent = 0;
  let n = 0;
  while (sent < total) {
    sent += PIECE.length;
    n++;
    if (!res.write(PIECE)) await new Promise((resolve) => res.once('drain', resolve));
    if (res.destroyed) return;
  }
  res.end(tail(withUsage, n * PIECE_TOKENS));
}

/** The request body as JSON; {} when it is not JSON. */
function readJson(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString()));
      } catch {
        resolve({});
      }
    });
  });
}

/**
 * An HTTP server on a free loopback port that hands each request to `route(req, res, body,
 * withUsage)`, `withUsage` being whether the caller asked for `stream_options.include_usage`.
 */
export async function startStreamServer(route, { keepAliveTimeout }) {
  const server = createServer(async (req, res) => {
    res.on('error', () => {});
    const body = await readJson(req);
    await route(req, res, body, body.stream_options?.include_usage === true);
  });
  server.keepAliveTimeout = keepAliveTimeout;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** Serve until stdin ends (the benchmark is done, or gone), then close `server` and `others`, and exit. */
export function serveUntilStdinEnds(server, ...others) {
  process.stdin.resume();
  process.stdin.on('end', async () => {
    server.closeAllConnections();
    server.close();
    for (const other of others) await other.close();
    process.exit(0);
  });
}
