#!/usr/bin/env node
// meter.fetch against raw fetch, side by side in one run: what metering costs the caller.
//
//   npm run build && node --expose-gc bench/fetch.mjs [--rounds=5] [--requests=2000]
//     [--concurrency=16] [--pairs=1000] [--delays=0,5,20] [--chunks=500] [--interval=2] [--mb=100]
//
// 1. Non-streaming chat completions to the simulator on loopback (keep-alive undici fetch),
//    raw and metered interleaved, order alternating by round, once per simulated server time in
//    `--delays` (ms the simulator waits before answering, its `queueMs`; 0 is a zero-latency
//    loopback server, where the client's own CPU is all there is to a call, and 5 and 20 ms are
//    closer to a real provider): throughput ratio, the client process's CPU time per call (the
//    servers run in another process), and the median added microseconds per call (sequential
//    pairs; `--pairs` at 0 ms, a tenth of that with a server time).
// 2. Streaming: per-chunk added delay at the consumer, p50/p99: a server writes the same
//    stamped chunks to a raw and a metered consumer on one schedule; each chunk's arrival
//    through meter.fetch minus its arrival through raw fetch. Both the plain path (the caller
//    asked for include_usage) and the usage-hiding rewrite (it did not).
// 3. Memory while streaming `--mb` MB through meter.fetch (and raw, for reference): growth of
//    heap and RSS over a gc'd baseline, peak and after.
// 4. Pre-flight token counting of a ~2,000-token chat prompt: first call in a fresh process
//    (import + lazy encoder load) and steady state.
//
// Telemetry only: a BasicTracerProvider with a BatchSpanProcessor and a no-op exporter, an SDK
// MeterProvider with a no-op exporter, `database: false`. The servers run in a child process
// (bench/fetch-server.mjs). Figures are printed as a Markdown table and written to
// bench/out/fetch.md. Never assertions: this machine's numbers, for the README.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { createMeter } from '../dist/index.js';
import { CHAT_INIT, drain, readStamped, streamChat } from './lib/chat.mjs';
import { jsonChild } from './lib/child.mjs';
import { streamMemory } from './lib/memory.mjs';
import { sdkProviders } from './lib/otel.mjs';
import { alternate, concurrently } from './lib/rounds.mjs';
import { fmt, median, parseArgs, quantile, range } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = parseArgs();
const ROUNDS = Number(args.rounds ?? 5);
const REQUESTS = Number(args.requests ?? 2000);
const CONCURRENCY = Number(args.concurrency ?? 16);
const PAIRS = Number(args.pairs ?? 1000);
const CHUNKS = Number(args.chunks ?? 500);
const INTERVAL = Number(args.interval ?? 2);
const MB = Number(args.mb ?? 100);
const DELAYS = String(args.delays ?? '0,5,20')
  .split(',')
  .map(Number)
  .filter((n) => Number.isFinite(n) && n >= 0);

if (typeof global.gc !== 'function') {
  console.error('Run with node --expose-gc for the memory figures.');
  process.exit(1);
}

const now = () => performance.timeOrigin + performance.now();
const log = (...a) => console.error(...a);

// --- servers ---------------------------------------------------------------------------------
const servers = jsonChild(process.execPath, [join(ROOT, 'bench', 'fetch-server.mjs')]);
const urls = await servers.next();

// --- the two fetches -------------------------------------------------------------------------
const dispatcher = new Agent({ keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, connections: 128 });
const base = (input, init) => undiciFetch(input, { ...init, dispatcher });

const { tracerProvider, meterProvider } = await sdkProviders();
let records = 0;
const meter = createMeter({
  database: false,
  fetch: base,
  tracerProvider,
  meterProvider,
  onRecord: () => {
    records++;
  },
});
const metered = meter.fetch;

const CHAT_URL = `${urls.sim}/v1/chat/completions`;

/** The chat call, with the simulator told to wait `delayMs` before it answers. */
const initFor = (delayMs) =>
  delayMs === 0
    ? CHAT_INIT
    : {
        ...CHAT_INIT,
        headers: { ...CHAT_INIT.headers, 'x-sim-options': JSON.stringify({ queueMs: delayMs }) },
      };

async function call(f, init = CHAT_INIT) {
  const res = await f(CHAT_URL, init);
  const json = await res.json();
  if (!json.usage) throw new Error('no usage in the response');
}

/** `n` calls at `concurrency`: wall time and this (client) process's CPU time per call. */
async function batch(f, n, concurrency, init = CHAT_INIT) {
  const { ms, cpuUs } = await concurrently(n, concurrency, () => call(f, init));
  return { ms, cpuUs: cpuUs / n };
}

// --- 1. non-streaming throughput, CPU and added latency ----------------------------------------
log(`non-streaming: warm-up`);
await batch(base, 500, CONCURRENCY);
await batch(metered, 500, CONCURRENCY);

const nonStreaming = DELAYS.map((delayMs) => ({
  delayMs,
  requests: delayMs === 0 ? REQUESTS : Math.max(100, Math.round(REQUESTS / 2)),
  pairs: delayMs === 0 ? PAIRS : Math.max(20, Math.round(PAIRS / 10)),
  rate: { raw: [], metered: [] },
  cpu: { raw: [], metered: [] },
  ratio: [],
  addedCpu: [],
  added: [],
}));
for (let round = 0; round < ROUNDS; round++) {
  for (const row of nonStreaming) {
    const init = initFor(row.delayMs);
    const got = {};
    for (const side of alternate(round, ['raw', 'metered'])) {
      got[side] = await batch(side === 'raw' ? base : metered, row.requests, CONCURRENCY, init);
    }
    const rawRate = (row.requests * 1000) / got.raw.ms;
    const meteredRate = (row.requests * 1000) / got.metered.ms;
    row.rate.raw.push(rawRate);
    row.rate.metered.push(meteredRate);
    row.ratio.push(meteredRate / rawRate);
    row.cpu.raw.push(got.raw.cpuUs);
    row.cpu.metered.push(got.metered.cpuUs);
    row.addedCpu.push(got.metered.cpuUs - got.raw.cpuUs);

    const diffs = [];
    for (let i = 0; i < row.pairs; i++) {
      const pair = {};
      for (const side of alternate(i, ['raw', 'metered'])) {
        const t0 = performance.now();
        await call(side === 'raw' ? base : metered, init);
        pair[side] = performance.now() - t0;
        // The meter hands its spans and metrics to the SDK on the next immediate: let that run
        // here, outside both timings, rather than inside the next call's.
        await new Promise((resolve) => setImmediate(resolve));
      }
      diffs.push((pair.metered - pair.raw) * 1000);
    }
    row.added.push(median(diffs));
    log(
      `  round ${round + 1}, ${row.delayMs} ms server time: raw ${fmt(rawRate)}/s, metered ${fmt(meteredRate)}/s, ratio ${fmt(meteredRate / rawRate, 3)}, CPU +${fmt(got.metered.cpuUs - got.raw.cpuUs, 1)} µs, added ${fmt(median(diffs), 1)} µs`,
    );
  }
}
await meter.flush();

// --- 2. streaming: per-chunk added delay --------------------------------------------------------
/** A streaming chat request asking for usage in the stream or not. */
const streamInit = (content, includeUsage) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(streamChat(content, includeUsage)),
});

async function consume(f, url, includeUsage, arrivals) {
  const res = await f(url, streamInit('stream please', includeUsage));
  await readStamped(res, (i, sent, at) => arrivals.set(i, { at, sent }), now);
}

let streamId = 0;
const streamRows = [];
for (const includeUsage of [true, false]) {
  const label = includeUsage ? 'plain (caller asked include_usage)' : 'usage rewrite (caller did not)';
  log(`streaming: ${label}`);
  const paired = [];
  // The server alternates which socket it writes first, and both consumers share this thread,
  // so each chunk's difference is either about +(metered's work) or -(raw's work): two clusters
  // of equal size, whose p50 lands anywhere between them. The sum over two consecutive chunks
  // (one of each order) cancels the order: metered's work minus raw's per chunk.
  const balanced = [];
  for (let round = 0; round < Math.max(3, Math.ceil(ROUNDS / 2)); round++) {
    // Paired: one schedule, two consumers.
    const id = `p${streamId++}`;
    const url = `${urls.streams}/stream/${id}/2/${CHUNKS}/${INTERVAL}/v1/chat/completions`;
    const raw = new Map();
    const met = new Map();
    await Promise.all([consume(base, url, includeUsage, raw), consume(metered, url, includeUsage, met)]);
    const diff = (i) => (raw.has(i) && met.has(i) ? (met.get(i).at - raw.get(i).at) * 1000 : null);
    for (let i = 0; i < CHUNKS; i++) {
      const d = diff(i);
      if (d !== null) paired.push(d);
      const next = i % 2 === 0 ? diff(i + 1) : null;
      if (d !== null && next !== null) balanced.push(d + next);
    }
  }
  streamRows.push({
    label,
    p50: quantile(paired, 0.5),
    p99: quantile(paired, 0.99),
    max: Math.max(...paired),
    balanced: quantile(balanced, 0.5),
    n: paired.length,
  });
}
await meter.flush();

// --- 3. memory while streaming MB through ----------------------------------------------------------
/** `MB` MB streamed through `f`: memory over a gc'd baseline, after a full gc every 10 MiB. */
const streamBulk = (f, includeUsage) =>
  streamMemory(
    async () => {
      const res = await f(
        `${urls.streams}/bulk/${MB}/v1/chat/completions`,
        streamInit('a lot', includeUsage),
      );
      return (onBytes) => drain(res, onBytes);
    },
    { gcEveryMiB: 10, sampleEvery: 200, flush: () => meter.flush() },
  );

const memoryRows = [];
for (const [label, f, includeUsage] of [
  ['raw fetch', base, true],
  ['meter.fetch, plain', metered, true],
  ['meter.fetch, usage rewrite', metered, false],
]) {
  log(`memory: ${label}, ${MB} MB`);
  memoryRows.push({ label, ...(await streamBulk(f, includeUsage)) });
}

// --- 4. pre-flight token counting ----------------------------------------------------------------
const PARAGRAPH =
  'The meter counts tokens before a call only when something needs the count: a blocking budget, ' +
  'context-window enforcement, or a stream that ends without the provider saying how much it used. ' +
  'Counting is not free, so it is bounded on hostile input and never blocks the event loop for long. ';
const preflightScript = `
const t0 = performance.now();
const { estimateChatInput } = await import(${JSON.stringify(new URL('../dist/tokens/index.js', import.meta.url).href)});
const body = JSON.parse(process.argv[1]);
const t1 = performance.now();
const first = await estimateChatInput(body, process.argv[2], process.argv[3]);
const t2 = performance.now();
const times = [];
for (let i = 0; i < 200; i++) {
  const s = performance.now();
  await estimateChatInput(body, process.argv[2], process.argv[3]);
  times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ importMs: t1 - t0, firstMs: t2 - t1, tokens: first.tokens,
  steadyP50: times[100], steadyP99: times[198] }));
`;
function promptOf(paragraphs) {
  const turns = [];
  for (let i = 0; i < paragraphs; i++) {
    turns.push({ role: i % 2 === 0 ? 'user' : 'assistant', content: PARAGRAPH.repeat(3) });
  }
  return { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are terse.' }, ...turns] };
}
const preflightRows = [];
for (const [model, shape] of [
  ['gpt-4o-mini', 'openai-chat'],
  ['claude-sonnet-4-5', 'anthropic-messages'],
]) {
  // Grow the prompt to about 2,000 tokens as this tokenizer counts it.
  let paragraphs = 1;
  let runs = [];
  for (;;) {
    runs = [];
    for (let i = 0; i < 3; i++) {
      const out = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', preflightScript, JSON.stringify(promptOf(paragraphs)), model, shape],
        { encoding: 'utf8' },
      );
      if (out.status !== 0) throw new Error(out.stderr);
      runs.push(JSON.parse(out.stdout));
    }
    if (runs[0].tokens >= 1950 || paragraphs > 200) break;
    paragraphs = Math.max(paragraphs + 1, Math.floor((paragraphs * 2000) / runs[0].tokens));
  }
  preflightRows.push({
    model,
    tokens: runs[0].tokens,
    importMs: median(runs.map((r) => r.importMs)),
    firstMs: median(runs.map((r) => r.firstMs)),
    steadyP50: median(runs.map((r) => r.steadyP50)),
    steadyP99: median(runs.map((r) => r.steadyP99)),
  });
}

// --- report --------------------------------------------------------------------------------------
servers.proc.stdin.end();
await meter.shutdown();
await tracerProvider.shutdown();
await meterProvider.shutdown();
await dispatcher.close();

// Always the whole "median (min–max)", as this report has always printed it.
const fullRange = (xs, digits) => range(xs, digits, { full: true });
const lines = [
  `# meter.fetch vs raw fetch`,
  '',
  `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${new Date().toISOString()}.`,
  `Command: \`node --expose-gc bench/fetch.mjs ${process.argv.slice(2).join(' ')}\`. Median (min–max) over rounds.`,
  '',
  `## Non-streaming, simulator on loopback (${ROUNDS} rounds; per round and server time, raw and metered batches at concurrency ${CONCURRENCY} back to back, then sequential pairs)`,
  '',
  `Server time: what the simulator waits before it answers. At 0 ms (a zero-latency loopback`,
  `server) the client's own CPU is the whole call, so the throughput ratio is a CPU ratio; with 5`,
  `and 20 ms the figures are closer to what a caller of a real provider sees. CPU is this (client)`,
  `process's; the servers run in another process.`,
  '',
  '| figure | value | goal |',
  '|---|---|---|',
  ...nonStreaming.map((r) =>
    r.delayMs === 0
      ? `| throughput ratio (metered / raw) | ${fullRange(r.ratio, 3)} | ≥ 0.98 |`
      : `| throughput ratio with ${r.delayMs} ms simulated server time | ${fullRange(r.ratio, 3)} | ≥ 0.98 |`,
  ),
  ...nonStreaming
    .filter((r) => r.delayMs === 0)
    .flatMap((r) => [
      `| added per call, median µs | ${fullRange(r.added, 1)} | |`,
      `| added CPU per call, µs | ${fullRange(r.addedCpu, 1)} | |`,
    ]),
  '',
  `| figure | ${nonStreaming.map((r) => (r.delayMs === 0 ? '0 ms (zero-latency loopback)' : `${r.delayMs} ms server time`)).join(' | ')} |`,
  `|---|${nonStreaming.map(() => '---|').join('')}`,
  `| calls per batch / sequential pairs per round | ${nonStreaming.map((r) => `${fmt(r.requests)} / ${fmt(r.pairs)}`).join(' | ')} |`,
  `| raw fetch, calls/s | ${nonStreaming.map((r) => fullRange(r.rate.raw)).join(' | ')} |`,
  `| meter.fetch, calls/s | ${nonStreaming.map((r) => fullRange(r.rate.metered)).join(' | ')} |`,
  `| throughput ratio, metered / raw | ${nonStreaming.map((r) => fullRange(r.ratio, 3)).join(' | ')} |`,
  `| client CPU per call, raw fetch, µs | ${nonStreaming.map((r) => fullRange(r.cpu.raw, 1)).join(' | ')} |`,
  `| client CPU per call, meter.fetch, µs | ${nonStreaming.map((r) => fullRange(r.cpu.metered, 1)).join(' | ')} |`,
  `| added client CPU per call, µs | ${nonStreaming.map((r) => fullRange(r.addedCpu, 1)).join(' | ')} |`,
  `| added latency per call, median µs (sequential pairs) | ${nonStreaming.map((r) => fullRange(r.added, 1)).join(' | ')} |`,
  '',
  `## Streaming: added delay per chunk at the consumer (${CHUNKS} chunks every ${INTERVAL} ms per stream)`,
  '',
  '| path | p50 µs | p99 µs | max µs | order-balanced median µs | chunks | goal |',
  '|---|---|---|---|---|---|---|',
  ...streamRows.map(
    (r) =>
      `| ${r.label} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.max, 1)} | ${fmt(r.balanced, 1)} | ${r.n} | p99 ≤ 1,000 µs |`,
  ),
  '',
  'Each chunk is written by one server to a raw and a metered consumer at once (which socket first',
  'alternates); the figure is its arrival through meter.fetch minus its arrival through raw fetch.',
  'Both consumers share one thread, so the differences form two clusters (about +metered work when',
  'raw was written first, -raw work otherwise) and the p50 falls anywhere between them: compare',
  'builds by the order-balanced median (two consecutive chunks summed: metered minus raw work per',
  'chunk), or by bench/stream.mjs --synthetic (CPU per event).',
  '',
  `## Memory while streaming ${MB} MB (MiB over a gc'd baseline)`,
  '',
  '| path | MB/s | retained heap (max) | retained buffers (max) | heap after | sampled peak heap | sampled peak buffers | sampled peak RSS | goal |',
  '|---|---|---|---|---|---|---|---|---|',
  ...memoryRows.map(
    (r) =>
      `| ${r.label} | ${fmt(r.mbPerSecond)} | ${fmt(r.retainedHeap, 1)} | ${fmt(r.retainedBuffers, 1)} | ${fmt(r.afterHeap, 1)} | ${fmt(r.peakHeap, 1)} | ${fmt(r.peakBuffers, 1)} | ${fmt(r.peakRss, 1)} | ≤ 10 MB growth |`,
  ),
  '',
  'Retained: heap and buffer memory after a full gc, sampled every 10 MB while the stream flows (what',
  'the meter holds on to). Sampled peaks include garbage not yet collected (V8 collects the young',
  'generation only when it fills), so they bound memory use, not growth.',
  '',
  '## Pre-flight token counting (`estimateChatInput`), median of 3 fresh processes',
  '',
  '| model | prompt tokens | import ms | first call ms (lazy encoder load) | steady p50 ms | steady p99 ms |',
  '|---|---|---|---|---|---|',
  ...preflightRows.map(
    (r) =>
      `| ${r.model} | ${fmt(r.tokens)} | ${fmt(r.importMs, 1)} | ${fmt(r.firstMs, 1)} | ${fmt(r.steadyP50, 2)} | ${fmt(r.steadyP99, 2)} |`,
  ),
  '',
  `Records assembled during the run: ${fmt(records)}.`,
];
const markdown = `${lines.join('\n')}\n`;
console.log(markdown);
mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'out', 'fetch.md'), markdown);
