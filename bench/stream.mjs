#!/usr/bin/env node
// Client CPU per streamed event (and per non-streaming call) that meter.fetch adds over raw
// fetch, for one or more builds side by side: the quieter figure behind bench/fetch.mjs section 2
// (and section 1's "added client CPU per call") when a change is to be judged on a shared machine.
//
//   npm run build && node bench/stream.mjs [--builds=.,/tmp/wt-old] [--repeats=6]
//     [--events=20000] [--streams=4] [--calls=4000] [--only=plain,rewrite,call] [--gap=150]
//
// One server process (streams of chat-completion chunks, one chunk per write and `--gap` µs
// between writes so that most reads carry one event; and the simulator for non-streaming calls). For
// each repeat, each build in turn (order alternating by repeat) runs in a fresh client process of
// its own: a warm-up, then `--streams` raw and metered streams of `--events` events alternately,
// and for `call`, batches of `--calls` sequential non-streaming calls raw and metered alternately.
// The figure is the client process's CPU time (user + system), metered minus raw, per event (or
// per call), median over the client's streams; the table shows median (min–max) over repeats.
// `--synthetic`: the client's base fetch answers from memory (the same bytes, one event per chunk),
// so only the metering code's CPU is measured, far less noisy than over sockets.
// `--client --dist=DIR --url=...` is the client process itself; `--cpu-prof` on a client (run by
// hand: node --cpu-prof bench/stream.mjs --client --dist=dist --url=... --profile) streams through
// meter.fetch alone, for a CPU profile.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jsonChild } from './lib/child.mjs';
import { fmt, median, parseArgs, range } from './lib/stats.mjs';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = parseArgs();
const EVENTS = Number(args.events ?? 20_000);
const STREAMS = Number(args.streams ?? 4);
const CALLS = Number(args.calls ?? 4000);
const GAP_MS = Number(args.gap ?? 150) / 1000;
const ONLY = String(args.only ?? 'plain,rewrite,call').split(',');

const event = (i) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta: { content: ' tok' }, logprobs: null, finish_reason: null }],
    i,
  })}\n\n`;
const tail = (withUsage, n) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] })}\n\n` +
  (withUsage
    ? `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 20, completion_tokens: n, total_tokens: 20 + n } })}\n\n`
    : '') +
  'data: [DONE]\n\n';

// --- in-process upstream (--synthetic) -----------------------------------------------------------
// The same bytes as the server sends, one event per chunk, from memory: no socket, no other
// process, so the figure is the metering code's CPU alone (what the stream plumbing and the
// network add is the same for both sides and left out).
const encoder = new TextEncoder();
const EVENT_BYTES = Array.from({ length: 64 }, (_, i) => encoder.encode(event(i)));
const SIM_BODY = encoder.encode(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'The fox jumps.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 20, completion_tokens: 12, total_tokens: 32 },
  }),
);
async function syntheticFetch(input, init) {
  const url = String(input);
  if (!url.includes('/s/')) {
    return new Response(SIM_BODY, { status: 200, headers: { 'content-type': 'application/json' } });
  }
  const n = Number(new URL(url).pathname.split('/')[2]);
  const withUsage = JSON.parse(init.body).stream_options?.include_usage === true;
  let i = 0;
  const body = new ReadableStream(
    {
      pull(controller) {
        if (i < n) controller.enqueue(EVENT_BYTES[i++ % 64]);
        else {
          controller.enqueue(encoder.encode(tail(withUsage, n)));
          controller.close();
        }
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8' },
  });
}

// --- server process ------------------------------------------------------------------------------
if (args.serve) {
  const { startSimulator } = await import(pathToFileURL(resolve(ROOT, 'dist/sim/index.js')).href);
  const sim = await startSimulator({ defaults: { outputTokens: 12 } });
  const server = createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', async () => {
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString());
      } catch {}
      const withUsage = body.stream_options?.include_usage === true;
      const n = Number(new URL(req.url, 'http://x').pathname.split('/')[2]);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      for (let i = 0; i < n; i++) {
        if (!res.write(event(i))) await new Promise((r) => res.once('drain', r));
        // One event per read at the client, as a provider's tokens come: a short busy wait
        // between writes (timers are too coarse), then an immediate so the socket writes.
        const until = performance.now() + GAP_MS;
        while (performance.now() < until) {}
        await new Promise((r) => setImmediate(r));
        if (res.destroyed) return;
      }
      res.end(tail(withUsage, n));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(
    `${JSON.stringify({ streams: `http://127.0.0.1:${server.address().port}`, sim: sim.url })}\n`,
  );
  process.stdin.resume();
  process.stdin.on('end', async () => {
    server.closeAllConnections();
    server.close();
    await sim.close();
    process.exit(0);
  });
}

// --- client process ------------------------------------------------------------------------------
else if (args.client) {
  const { Agent, fetch: undiciFetch } = await import('undici');
  const { createMeter } = await import(pathToFileURL(resolve(args.dist, 'index.js')).href);
  const { sdkProviders } = await import('./lib/otel.mjs');
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
  const base = args.synthetic ? syntheticFetch : (input, init) => undiciFetch(input, { ...init, dispatcher });
  const { tracerProvider, meterProvider } = await sdkProviders();
  const meter = createMeter({ database: false, fetch: base, tracerProvider, meterProvider });
  const metered = meter.fetch;
  const init = (includeUsage) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    }),
  });
  const CHAT_INIT = {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'What does the quick brown fox do?' }],
      max_tokens: 64,
    }),
  };
  const settle = () => new Promise((r) => setImmediate(r));

  /** One stream of `n` events through `f`: CPU µs and reads. */
  async function stream(f, n, includeUsage) {
    await settle();
    const cpu0 = process.cpuUsage();
    const res = await f(`${args.url}/s/${n}/v1/chat/completions`, init(includeUsage));
    const reader = res.body.getReader();
    let reads = 0;
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      reads++;
    }
    await settle();
    const cpu = process.cpuUsage(cpu0);
    return { cpuUs: cpu.user + cpu.system, reads };
  }
  async function calls(f, n) {
    await settle();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const res = await f(`${args.sim}/v1/chat/completions`, CHAT_INIT);
      await res.json();
    }
    await settle();
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / n;
  }

  const out = {};
  if (args.profile) {
    for (let i = 0; i < STREAMS; i++) await stream(metered, EVENTS, args.profile !== 'rewrite');
  } else {
    for (const mode of ONLY) {
      if (mode === 'call') {
        await calls(base, 300);
        await calls(metered, 300);
        const added = [];
        for (let i = 0; i < STREAMS; i++) {
          const got = {};
          for (const side of i % 2 === 0 ? ['raw', 'metered'] : ['metered', 'raw']) {
            got[side] = await calls(side === 'raw' ? base : metered, CALLS);
          }
          added.push(got.metered - got.raw);
        }
        out.call = median(added);
        continue;
      }
      const includeUsage = mode === 'plain';
      await stream(base, 2000, includeUsage);
      await stream(metered, 2000, includeUsage);
      const added = [];
      let reads = 0;
      for (let i = 0; i < STREAMS; i++) {
        const got = {};
        for (const side of i % 2 === 0 ? ['raw', 'metered'] : ['metered', 'raw']) {
          got[side] = await stream(side === 'raw' ? base : metered, EVENTS, includeUsage);
        }
        added.push((got.metered.cpuUs - got.raw.cpuUs) / EVENTS);
        reads += got.metered.reads;
      }
      out[mode] = median(added);
      out[`${mode}EventsPerRead`] = (EVENTS * STREAMS) / reads;
    }
  }
  await meter.shutdown();
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  await dispatcher.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// --- driver ---------------------------------------------------------------------------------------
else {
  const builds = String(args.builds ?? '.').split(',');
  const REPEATS = Number(args.repeats ?? 6);
  const servers = jsonChild(process.execPath, [SELF, '--serve']);
  const urls = await servers.next();
  const results = new Map(builds.map((b) => [b, []]));
  for (let rep = 0; rep < REPEATS; rep++) {
    for (const build of rep % 2 === 0 ? builds : [...builds].reverse()) {
      const client = spawn(
        process.execPath,
        [
          SELF,
          '--client',
          `--dist=${resolve(build, 'dist')}`,
          `--url=${urls.streams}`,
          `--sim=${urls.sim}`,
          `--events=${EVENTS}`,
          `--streams=${STREAMS}`,
          `--calls=${CALLS}`,
          `--only=${ONLY.join(',')}`,
          ...(args.synthetic ? ['--synthetic'] : []),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let text = '';
      client.stdout.on('data', (d) => {
        text += d;
      });
      await new Promise((r) => client.on('close', r));
      const got = JSON.parse(text.trim().split('\n').pop());
      results.get(build).push(got);
      console.error(
        `repeat ${rep + 1} ${build}: ${JSON.stringify(got, (_k, v) => (typeof v === 'number' ? Number(v.toFixed(2)) : v))}`,
      );
    }
  }
  servers.proc.stdin.end();
  const cols = ONLY.map((m) =>
    m === 'call' ? 'call: added CPU µs per call' : `${m}: added CPU µs per event`,
  );
  console.log(`| build | ${cols.join(' | ')} |`);
  console.log(`|---|${cols.map(() => '---|').join('')}`);
  for (const [build, runs] of results) {
    console.log(
      `| ${build} | ${ONLY.map((m) =>
        range(
          runs.map((r) => r[m]),
          2,
          { full: true },
        ),
      ).join(' | ')} |`,
    );
  }
  console.log(
    `(${REPEATS} repeats; ${EVENTS} events × ${STREAMS} streams per side, ${CALLS} calls × ${STREAMS} batches; ${fmt(median(results.get(builds[0]).map((r) => r.plainEventsPerRead ?? Number.NaN)), 2)} events per read)`,
  );
}
