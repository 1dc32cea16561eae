// The servers bench/fetch.mjs measures against, in their own process so their CPU time is not
// charged to the client under test. Prints one JSON line with their URLs, then serves until
// stdin closes.
//
//   - the simulator (non-streaming chat completions, no delays);
//   - /stream/<id>/<consumers>/<chunks>/<intervalMs>/v1/chat/completions: waits for <consumers>
//     requests with the same <id>, then writes the same chat-completion chunks to all of them on
//     one schedule, each stamped with its index and send time, alternating which socket is
//     written first;
//   - /bulk/<megabytes>/v1/chat/completions: that many MB of chat-completion chunks as fast as
//     the client reads them (backpressure honoured), then usage and [DONE].
import { createServer } from 'node:http';
import { startSimulator } from '../dist/sim/index.js';

const now = () => performance.timeOrigin + performance.now();
const sim = await startSimulator({ defaults: { outputTokens: 12 } });

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

const HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const waiting = new Map();

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

async function stamped(res, id, consumers, chunks, intervalMs, withUsage) {
  const group = waiting.get(id) ?? [];
  group.push(res);
  waiting.set(id, group);
  if (group.length < consumers) return;
  waiting.delete(id);
  for (const r of group) r.writeHead(200, HEADERS);
  const start = now();
  for (let i = 0; i < chunks; i++) {
    // A fixed schedule from the start, so a late timer does not shift every later chunk.
    const due = start + (i + 1) * intervalMs;
    const wait = due - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const text = delta(' tok', { i, t: now() });
    const order = i % 2 === 0 ? group : [...group].reverse();
    for (const r of order) r.write(text);
  }
  for (const r of group) r.end(tail(withUsage, chunks));
}

async function bulk(res, megabytes, withUsage) {
  res.writeHead(200, HEADERS);
  const piece = delta(' lorem'.repeat(160));
  const total = megabytes * 1024 * 1024;
  let sent = 0;
  let n = 0;
  while (sent < total) {
    sent += piece.length;
    n++;
    if (!res.write(piece)) await new Promise((resolve) => res.once('drain', resolve));
    if (res.destroyed) return;
  }
  res.end(tail(withUsage, n * 160));
}

const server = createServer(async (req, res) => {
  res.on('error', () => {});
  const body = await readJson(req);
  const withUsage = body.stream_options?.include_usage === true;
  const parts = new URL(req.url, 'http://x').pathname.split('/');
  if (parts[1] === 'stream') {
    await stamped(res, parts[2], Number(parts[3]), Number(parts[4]), Number(parts[5]), withUsage);
  } else if (parts[1] === 'bulk') {
    await bulk(res, Number(parts[2]), withUsage);
  } else {
    res.writeHead(404).end();
  }
});
server.keepAliveTimeout = 60_000;
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
process.stdout.write(
  `${JSON.stringify({ sim: sim.url, streams: `http://127.0.0.1:${server.address().port}` })}\n`,
);

process.stdin.resume();
process.stdin.on('end', async () => {
  server.closeAllConnections();
  server.close();
  await sim.close();
  process.exit(0);
});
