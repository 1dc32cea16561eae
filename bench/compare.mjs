#!/usr/bin/env node
// Per-call overhead of each way to observe an LLM call, side by side in one run.
//
//   npm run build && node --expose-gc bench/compare.mjs [--rounds=5] [--requests=1000]
//     [--concurrency=16] [--sequential=200] [--chunks=500] [--interval=2] [--mb=20]
//     [--only=raw,undici,...] [--with=meter-alert,meter-block] [--quick] [--json]
//
//   --only    exactly these approaches (raw and openai, the baselines, always run)
//   --with    these (optional) approaches too, beside the default set or --only's
//   --quick   smoke-test settings (1 round, 300 calls, 60 sequential, 100 chunks, 2 MB) unless
//             given explicitly: checks the pipeline in well under a minute, not figures to publish
//
// Approaches, each in its own long-lived child process (OpenTelemetry's global state and
// instrumentations cannot be unloaded, so no two share a process):
//
//   raw           global fetch, nothing else
//   undici        @opentelemetry/instrumentation-undici: a plain HTTP client span (and its
//                 duration metric) per request; the floor for any OpenTelemetry-based approach
//   openai        the official openai client, uninstrumented: OpenLLMetry's baseline
//   openllmetry   @traceloop/node-server-sdk instrumenting the openai client
//   openai-meter  the openai client with llm-meter's fetch (telemetry only): llm-meter measured
//                 the way OpenLLMetry is, against the same baseline
//   meter         llm-meter meter.fetch, telemetry only (database: false)
//   meter-full    llm-meter meter.fetch, telemetry + SQLite store + budgets (one alert budget and
//                 one block budget whose scopes match every call; a block budget makes every
//                 call count its input tokens before it is sent)
//   meter-store   (only when named in --only) telemetry + store, no budgets
//   meter-default llm-meter at its default configuration, what a user's service runs:
//                 createMeter({ database: <a temporary SQLite FILE>, tracerProvider }) (the
//                 meter provider is the global one, the same SDK), no budgets
//   meter-alert   (optional) meter-default + one alert-only budget whose scope matches every call
//   meter-block   (optional) meter-default + one blocking budget with ample room (every call is
//                 token-counted and reserved against it before it is sent)
//
// Goals (issue 14), each judged on the median over rounds of a per-round figure, PASS or MISS in
// the report's goal table: meter-default adds ≤ 100 µs of event-loop time per call and keeps a
// throughput ratio ≥ 0.85 and ≥ undici's; meter (telemetry only) adds no more event-loop time
// than undici; meter-block adds ≤ 100 µs more than meter-default; meter-alert adds nothing
// measurable over meter-default.
//
// Every OpenTelemetry process gets the same SDK: a tracer provider with a BatchSpanProcessor and a
// no-op exporter that counts spans, an SDK MeterProvider with a no-op exporter, the
// AsyncLocalStorage context manager and the W3C propagator, all registered globally (OpenLLMetry
// builds its own NodeSDK; it is given the same counting no-op exporter).
//
// The simulator (dist/sim) and a stamped-stream server run in one more child process, so their CPU
// is not charged to the client under test. Each round runs, for every approach in turn (the
// starting approach rotates by round), then for the next test:
//
//   1. non-streaming chat completions: `--requests` calls at `--concurrency` (calls/s, the
//      client process's CPU time per call, and its event-loop busy time per call: the active
//      time of a performance.eventLoopUtilization() delta over the same window, i.e. utilization
//      × wall time, over the calls; the time a service's main thread spends on them, where CPU
//      time also counts the threads beside it: GC helpers, libuv, the store's checkpoint
//      worker), then `--sequential` calls one at a time (median latency, event-loop time);
//   2. one stream of `--chunks` chunks written every `--interval` ms, each stamped with its send
//      time on the system-wide monotonic clock: the consumer's arrival time minus the stamp is
//      the chunk's latency, p50 and p99 per stream;
//   3. `--mb` MB of SSE streamed as fast as the consumer reads: heap and buffer memory retained
//      (after a full gc every 2 MB) over a gc'd baseline, RSS, and the time from the last chunk
//      to the end of the stream (work an instrumentation does when the stream ends).
//
// A warm-up round is run first and discarded. Every figure is computed per round against the
// baseline's figure in the same round (raw fetch; the plain openai client for the openai-client
// approaches), then summarised as median (min–max) over rounds. Streams in different processes
// cannot be paired chunk by chunk, so the streaming figures are differences of per-stream
// quantiles, not quantiles of per-chunk differences.
//
// Output: a Markdown report on stdout (and bench/out/compare.md); with --json, one JSON object
// on stdout instead ({ markdown, meta, approaches, summary, goals, rounds }). Progress goes to
// stderr.
//
// Note: importing llm-meter loads the undici package (its webhook transport), and loading undici
// installs its Agent as the global dispatcher, so in the llm-meter processes Node's built-in fetch
// sends through undici's Agent from node_modules rather than the one bundled with Node; the raw
// and undici processes keep Node's own. That is what a user's service gets too, so it is part of
// what is measured (bench/profile.mjs shows the frames of both).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHAT, CHAT_INIT, drain, readStamped, streamChat } from './lib/chat.mjs';
import { jsonChild } from './lib/child.mjs';
import { streamMemory } from './lib/memory.mjs';
import { countingSpanExporter, sdkProviders } from './lib/otel.mjs';
import { concurrently } from './lib/rounds.mjs';
import {
  PIECE_BYTES,
  serveUntilStdinEnds,
  startStreamServer,
  writeBulk,
  writeStamped,
} from './lib/server.mjs';
import { fmt, nowNs, parseArgs, quantile, range, summarize, table } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const args = parseArgs();
const ROLE = args.role ?? 'main';
const log = (...a) => console.error(...a);

function version(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

export const APPROACHES = [
  { id: 'raw', label: 'raw fetch', kind: 'fetch', baseline: null },
  {
    id: 'undici',
    label: `@opentelemetry/instrumentation-undici ${version('@opentelemetry/instrumentation-undici')}`,
    kind: 'fetch',
    baseline: 'raw',
  },
  {
    id: 'openai',
    label: `openai ${version('openai')} client, uninstrumented`,
    kind: 'openai',
    baseline: 'raw',
  },
  {
    id: 'openllmetry',
    label: `OpenLLMetry (@traceloop/node-server-sdk ${version('@traceloop/node-server-sdk')}) on the openai client`,
    kind: 'openai',
    baseline: 'openai',
  },
  {
    id: 'openai-meter',
    label: 'llm-meter (telemetry only) on the openai client',
    kind: 'openai',
    baseline: 'openai',
  },
  { id: 'meter', label: 'llm-meter, telemetry only', kind: 'fetch', baseline: 'raw' },
  { id: 'meter-full', label: 'llm-meter, telemetry + store + budgets', kind: 'fetch', baseline: 'raw' },
  // Only with --only=…,meter-store: splits meter-full's cost between the store and the budgets.
  {
    id: 'meter-store',
    label: 'llm-meter, telemetry + store (no budgets)',
    kind: 'fetch',
    baseline: 'raw',
    optional: true,
  },
  {
    id: 'meter-default',
    label: 'llm-meter, default configuration (telemetry + SQLite file store)',
    kind: 'fetch',
    baseline: 'raw',
  },
  {
    id: 'meter-alert',
    label: 'llm-meter, default + an alert-only budget',
    kind: 'fetch',
    baseline: 'raw',
    optional: true,
  },
  {
    id: 'meter-block',
    label: 'llm-meter, default + a blocking budget',
    kind: 'fetch',
    baseline: 'raw',
    optional: true,
  },
];

// The simulator is on loopback, so llm-meter calls its provider openai_compatible; both scopes
// match every call the benchmark makes, and the limits leave ample room.
const ALERT_BUDGET = { name: 'bench alert', scope: { provider: 'openai_compatible' }, action: 'alert' };
const BLOCK_BUDGET = { name: 'bench block', scope: { model: 'gpt-4o-mini' }, action: 'block' };

/**
 * How each llm-meter approach calls createMeter: `store` (a temporary SQLite file, else
 * database: false), `budgets` created before the first call, `providers: 'both'` (the tracer and
 * meter providers passed explicitly, as the first benchmarks did) or 'tracer' (the default
 * configuration: only the tracer provider, metrics through the global meter provider, which is
 * the same SDK), and `openai` (meter.fetch given to the openai client).
 */
const METER_CONFIGS = {
  meter: { store: false, budgets: [], providers: 'both' },
  'openai-meter': { store: false, budgets: [], providers: 'both', openai: true },
  'meter-full': { store: true, budgets: [ALERT_BUDGET, BLOCK_BUDGET], providers: 'both' },
  'meter-store': { store: true, budgets: [], providers: 'both' },
  'meter-default': { store: true, budgets: [], providers: 'tracer' },
  'meter-alert': { store: true, budgets: [ALERT_BUDGET], providers: 'tracer' },
  'meter-block': { store: true, budgets: [BLOCK_BUDGET], providers: 'tracer' },
};

// ============================================================================= server process

async function serve() {
  const { startSimulator } = await import('../dist/sim/index.js');
  const sim = await startSimulator({ defaults: { outputTokens: 12 } });
  // The simulator keeps every call for tests to inspect; a benchmark makes ~100k of them.
  setInterval(() => {
    sim.calls.length = 0;
  }, 500).unref();

  const { server, url } = await startStreamServer(
    async (req, res, _body, withUsage) => {
      const [mode, a, b] = String(req.headers['x-bench'] ?? '').split(':');
      // stream:<chunks>:<intervalMs> | bulk:<megabytes>
      if (mode === 'stream') {
        await writeStamped([res], { chunks: Number(a), intervalMs: Number(b), withUsage });
      } else if (mode === 'bulk') {
        await writeBulk(res, Number(a), withUsage);
      } else {
        res.writeHead(404).end();
      }
    },
    { keepAliveTimeout: 120_000 },
  );
  process.stdout.write(`${JSON.stringify({ sim: sim.url, streams: url, pieceBytes: PIECE_BYTES })}\n`);
  serveUntilStdinEnds(server, sim);
}

// ============================================================================= worker process

async function globalOtel() {
  const { context, metrics, propagation, trace } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const otel = await sdkProviders();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(otel.tracerProvider);
  metrics.setGlobalMeterProvider(otel.meterProvider);
  return otel;
}

const STREAM_CHAT = streamChat('stream please', true);

/** { call(), stream(header, onChunk(index, stampNs, arrivalNs)), bulk(header, onBytes(n)), flush(), stats() } */
export async function setupApproach(id, urls) {
  const approach = APPROACHES.find((a) => a.id === id);
  let fetchFn = globalThis.fetch;
  let flush = async () => {};
  let stats = () => ({});
  let openaiFetch;

  if (id === 'undici') {
    const otel = await globalOtel();
    const { registerInstrumentations } = await import('@opentelemetry/instrumentation');
    const { UndiciInstrumentation } = await import('@opentelemetry/instrumentation-undici');
    registerInstrumentations({
      instrumentations: [new UndiciInstrumentation()],
      tracerProvider: otel.tracerProvider,
      meterProvider: otel.meterProvider,
    });
    flush = otel.flush;
    stats = () => ({ spans: otel.exporter.spans });
  } else if (METER_CONFIGS[id]) {
    const config = METER_CONFIGS[id];
    const otel = await globalOtel();
    const { createMeter } = await import('../dist/index.js');
    const dir = config.store ? mkdtempSync(join(tmpdir(), 'llm-meter-compare-')) : null;
    const meter = createMeter({
      database: dir ? join(dir, 'bench.db') : false,
      tracerProvider: otel.tracerProvider,
      ...(config.providers === 'both' ? { meterProvider: otel.meterProvider } : {}),
    });
    if (dir) process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    for (const budget of config.budgets) {
      await meter.budgets.create({ ...budget, period: 'month', limit_usd: 1_000_000 });
    }
    if (config.openai) openaiFetch = meter.fetch;
    else fetchFn = meter.fetch;
    flush = async () => {
      await meter.flush();
      await otel.flush();
    };
    stats = async () => {
      const budgets = meter.budgets ? await meter.budgets.list() : [];
      return {
        spans: otel.exporter.spans,
        meter: meter.stats(),
        budgets: budgets.map((b) => ({ name: b.name, spent_usd: b.spent_usd })),
        rows: meter.store ? (await meter.store.summary({ groupBy: [] })).totals?.requests : undefined,
      };
    };
  } else if (id === 'openllmetry') {
    const traceloop = await import('@traceloop/node-server-sdk');
    const { default: OpenAI } = await import('openai');
    const exporter = countingSpanExporter();
    traceloop.initialize({
      disableBatch: false,
      exporter,
      instrumentModules: { openAI: OpenAI },
      silenceInitializationMessage: true,
      // Otherwise it polls api.traceloop.com for prompts in the background.
      traceloopSyncEnabled: false,
    });
    flush = () => traceloop.forceFlush();
    stats = () => ({ spans: exporter.spans });
  }

  if (approach.kind === 'fetch') {
    const f = fetchFn;
    const streamBody = JSON.stringify(STREAM_CHAT);
    const post = (header) =>
      f(`${urls.streams}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'x-bench': header },
        body: streamBody,
      });
    return {
      flush,
      stats,
      async call() {
        const res = await f(`${urls.sim}/v1/chat/completions`, CHAT_INIT);
        const json = await res.json();
        if (!json.usage) throw new Error(`no usage in the response (status ${res.status})`);
      },
      stream: async (header, onChunk) => readStamped(await post(header), onChunk),
      bulk: async (header, onBytes) => drain(await post(header), onBytes),
    };
  }

  const { default: OpenAI } = await import('openai');
  const common = {
    apiKey: 'sk-bench',
    maxRetries: 0,
    timeout: 120_000,
    ...(openaiFetch ? { fetch: openaiFetch } : {}),
  };
  const simClient = new OpenAI({ ...common, baseURL: `${urls.sim}/v1` });
  const streamClient = new OpenAI({ ...common, baseURL: `${urls.streams}/v1` });
  return {
    flush,
    stats,
    async call() {
      const completion = await simClient.chat.completions.create(CHAT);
      if (!completion.usage) throw new Error('no usage in the response');
    },
    async stream(header, onChunk) {
      const stream = await streamClient.chat.completions.create(STREAM_CHAT, {
        headers: { 'x-bench': header },
      });
      for await (const chunk of stream) {
        const at = nowNs();
        if (chunk.t !== undefined) onChunk(chunk.i, chunk.t, at);
      }
    },
    async bulk(header, onBytes) {
      const stream = await streamClient.chat.completions.create(STREAM_CHAT, {
        headers: { 'x-bench': header },
      });
      // The client hands over parsed chunks, not bytes: count the bytes the server sent per chunk.
      for await (const chunk of stream) if (chunk.choices?.[0]?.delta?.content) onBytes(urls.pieceBytes);
    },
  };
}

async function work(id) {
  const urls = JSON.parse(args.urls);
  const a = await setupApproach(id, urls);
  let calls = 0;

  const handlers = {
    async calls({ requests, concurrency, sequential }) {
      // Reopen keep-alive connections that timed out while the other approaches ran.
      await Promise.all(Array.from({ length: concurrency }, () => a.call()));
      const { ms, cpuUs, loopUs } = await concurrently(requests, concurrency, () => a.call());
      const latencies = [];
      const elu0 = performance.eventLoopUtilization();
      for (let i = 0; i < sequential; i++) {
        const s = nowNs();
        await a.call();
        latencies.push((nowNs() - s) / 1000);
      }
      const seqLoop = performance.eventLoopUtilization(elu0);
      calls += concurrency + requests + sequential;
      return {
        rate: (requests * 1000) / ms,
        cpuUsPerCall: cpuUs / requests,
        loopUsPerCall: loopUs / requests,
        loopUtilization: loopUs / 1000 / ms,
        seqLoopUsPerCall: (seqLoop.active * 1000) / sequential,
        latencyUs: quantile(latencies, 0.5),
        latencyP99Us: quantile(latencies, 0.99),
      };
    },

    async stream({ chunks, interval }) {
      const lat = new Float64Array(chunks);
      lat.fill(Number.NaN);
      await a.stream(`stream:${chunks}:${interval}`, (i, sentNs, atNs) => {
        lat[i] = (atNs - sentNs) / 1000;
      });
      calls++;
      const got = [...lat].filter((x) => Number.isFinite(x));
      return {
        n: got.length,
        p50: quantile(got, 0.5),
        p99: quantile(got, 0.99),
        max: Math.max(...got),
      };
    },

    async memory({ mb }) {
      const m = await streamMemory(async () => (onBytes) => a.bulk(`bulk:${mb}`, onBytes), {
        gcEveryMiB: 2,
        sampleEvery: 100,
        flush: a.flush,
      });
      calls++;
      const { mbPerSecond, retainedHeap, retainedBuffers, peakRss, afterHeap, endMs } = m;
      return { mbPerSecond, retainedHeap, retainedBuffers, peakRss, afterHeap, endMs };
    },

    async stats() {
      await a.flush();
      return { calls, ...(await a.stats()) };
    },
  };

  process.on('message', async ({ seq, cmd, ...params }) => {
    try {
      process.send({ seq, ok: true, value: await handlers[cmd](params) });
    } catch (error) {
      process.send({ seq, ok: false, error: String(error?.stack ?? error) });
    }
  });
  // Exit (running 'exit' handlers: the temporary database goes) when told to or orphaned.
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
  process.send({ seq: 0, ok: true, value: 'ready' });
}

// ============================================================================= orchestrator

export async function startServer() {
  const child = jsonChild(process.execPath, [SELF, '--role=server']);
  return { child: child.proc, urls: await child.next() };
}

function startWorker(approach, urls) {
  const child = spawn(
    process.execPath,
    ['--expose-gc', SELF, '--role=worker', `--approach=${approach.id}`, `--urls=${JSON.stringify(urls)}`],
    // The worker's stdout goes to our stderr: stdout carries only the report.
    { stdio: ['ignore', 2, 2, 'ipc'] },
  );
  const pending = new Map();
  let seq = 0;
  let dead = null;
  child.on('message', (msg) => {
    const p = pending.get(msg.seq);
    if (!p) return;
    pending.delete(msg.seq);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
  });
  child.on('exit', (code, signal) => {
    dead = `exited (${code ?? signal})`;
    for (const p of pending.values()) p.reject(new Error(`${approach.id} worker ${dead}`));
    pending.clear();
  });
  const wait = (id, timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        child.kill('SIGKILL');
        reject(new Error(`${approach.id}: no answer in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  return {
    approach,
    child,
    ready: wait(0, 60_000),
    ask(cmd, params = {}, timeoutMs = 180_000) {
      if (dead) return Promise.reject(new Error(`${approach.id} worker ${dead}`));
      const id = ++seq;
      const answer = wait(id, timeoutMs);
      child.send({ seq: id, cmd, ...params });
      return answer;
    },
    close() {
      if (!dead) child.kill('SIGTERM');
    },
  };
}

async function main() {
  if (typeof globalThis.gc !== 'function') {
    log('Run with node --expose-gc (the workers are started with it; this only checks the setup).');
  }
  const QUICK = args.quick === 'true';
  const ROUNDS = Number(args.rounds ?? (QUICK ? 1 : 5));
  const REQUESTS = Number(args.requests ?? (QUICK ? 300 : 1000));
  const CONCURRENCY = Number(args.concurrency ?? 16);
  const SEQUENTIAL = Number(args.sequential ?? (QUICK ? 60 : 200));
  const CHUNKS = Number(args.chunks ?? (QUICK ? 100 : 500));
  const INTERVAL = Number(args.interval ?? 2);
  const MB = Number(args.mb ?? (QUICK ? 2 : 20));
  const only = args.only ? new Set(['raw', 'openai', ...args.only.split(',')]) : null;
  const extra = new Set(args.with ? args.with.split(',') : []);
  const unknown = [...(only ?? []), ...extra].filter((id) => !APPROACHES.some((a) => a.id === id));
  if (unknown.length) throw new Error(`compare: unknown approach ${unknown.join(', ')}`);
  const approaches = APPROACHES.filter((a) => extra.has(a.id) || (only ? only.has(a.id) : !a.optional));
  const started = Date.now();

  const { child: server, urls } = await startServer();
  const workers = new Map();
  const failed = new Map();
  for (const approach of approaches) {
    log(`compare: starting ${approach.id}`);
    const w = startWorker(approach, urls);
    try {
      await w.ready;
      workers.set(approach.id, w);
    } catch (error) {
      failed.set(approach.id, String(error.message ?? error).split('\n')[0]);
      w.close();
    }
  }

  const ask = async (id, cmd, params) => {
    const w = workers.get(id);
    if (!w) return null;
    try {
      return await w.ask(cmd, params);
    } catch (error) {
      log(`compare: ${id} failed: ${error.message}`);
      failed.set(id, String(error.message ?? error).split('\n')[0]);
      workers.delete(id);
      w.close();
      return null;
    }
  };

  const rounds = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const warm = round === 0;
    const ids = approaches.map((a) => a.id);
    const order = [...ids.slice(round % ids.length), ...ids.slice(0, round % ids.length)];
    const result = { calls: {}, stream: {}, memory: {} };
    log(
      `compare: ${warm ? 'warm-up round (discarded)' : `round ${round}/${ROUNDS}`}, order ${order.join(', ')}`,
    );
    for (const id of order) {
      result.calls[id] = await ask(id, 'calls', {
        requests: warm ? Math.ceil(REQUESTS / 4) : REQUESTS,
        concurrency: CONCURRENCY,
        sequential: warm ? Math.ceil(SEQUENTIAL / 3) : SEQUENTIAL,
      });
    }
    for (const id of order) {
      result.stream[id] = await ask(id, 'stream', { chunks: warm ? 100 : CHUNKS, interval: INTERVAL });
    }
    for (const id of order) {
      result.memory[id] = await ask(id, 'memory', { mb: warm ? Math.min(MB, 4) : MB });
    }
    if (!warm) rounds.push(result);
    const line = order
      .filter((id) => result.calls[id])
      .map((id) => `${id} ${fmt(result.calls[id].rate)}/s`)
      .join(', ');
    log(`  ${line}`);
  }

  const finalStats = {};
  for (const id of workers.keys()) finalStats[id] = await ask(id, 'stats');
  for (const w of workers.values()) w.close();
  server.stdin.end();

  // --- per-round differences against the baseline of the same round ---------------------------
  const per = (fn) => (id) => rounds.map((r) => fn(r, id));
  const ratioTo = (other) => per((r, id) => r.calls[id]?.rate / r.calls[other]?.rate);
  const diffTo = (section, field, other) =>
    per((r, id) => r[section][id]?.[field] - r[section][other]?.[field]);
  const own = (section, field) => per((r, id) => r[section][id]?.[field]);

  const summary = {};
  for (const a of approaches) {
    const id = a.id;
    const b = a.baseline ?? 'raw';
    summary[id] = {
      label: a.label,
      baseline: a.baseline,
      failed: failed.get(id) ?? null,
      rate: summarize(own('calls', 'rate')(id)),
      ratioVsRaw: summarize(ratioTo('raw')(id)),
      ratioVsBaseline: summarize(ratioTo(b)(id)),
      latencyUs: summarize(own('calls', 'latencyUs')(id)),
      addedLatencyUs: summarize(diffTo('calls', 'latencyUs', b)(id)),
      addedLatencyVsRawUs: summarize(diffTo('calls', 'latencyUs', 'raw')(id)),
      loopUsPerCall: summarize(own('calls', 'loopUsPerCall')(id)),
      loopUtilization: summarize(own('calls', 'loopUtilization')(id)),
      addedLoopUs: summarize(diffTo('calls', 'loopUsPerCall', b)(id)),
      addedLoopVsRawUs: summarize(diffTo('calls', 'loopUsPerCall', 'raw')(id)),
      seqLoopUsPerCall: summarize(own('calls', 'seqLoopUsPerCall')(id)),
      addedSeqLoopUs: summarize(diffTo('calls', 'seqLoopUsPerCall', b)(id)),
      cpuUsPerCall: summarize(own('calls', 'cpuUsPerCall')(id)),
      addedCpuUs: summarize(diffTo('calls', 'cpuUsPerCall', b)(id)),
      addedCpuVsRawUs: summarize(diffTo('calls', 'cpuUsPerCall', 'raw')(id)),
      streamP50: summarize(own('stream', 'p50')(id)),
      streamP99: summarize(own('stream', 'p99')(id)),
      streamMax: summarize(own('stream', 'max')(id)),
      addedStreamP50: summarize(diffTo('stream', 'p50', b)(id)),
      addedStreamP99: summarize(diffTo('stream', 'p99', b)(id)),
      mbPerSecond: summarize(own('memory', 'mbPerSecond')(id)),
      retainedHeap: summarize(own('memory', 'retainedHeap')(id)),
      retainedBuffers: summarize(own('memory', 'retainedBuffers')(id)),
      addedRetainedHeap: summarize(diffTo('memory', 'retainedHeap', b)(id)),
      peakRss: summarize(own('memory', 'peakRss')(id)),
      afterHeap: summarize(own('memory', 'afterHeap')(id)),
      endMs: summarize(own('memory', 'endMs')(id)),
      final: finalStats[id] ?? null,
    };
    const f = finalStats[id];
    if (f && f.spans !== undefined) summary[id].spansPerCall = f.spans / f.calls;
  }

  // --- report ----------------------------------------------------------------------------------
  const name = (a) => (summary[a.id].failed ? `${a.label} (failed: ${summary[a.id].failed})` : a.label);
  const vs = (a) => (a.baseline === 'openai' ? 'openai client' : a.baseline === 'raw' ? 'raw fetch' : '–');
  const baselineRow = (a, cell) => (a.baseline ? cell : 'baseline');
  const S = (a) => summary[a.id];
  const headline = table(
    [
      'approach',
      'compared with',
      'throughput ratio',
      'added event-loop µs/call',
      'added CPU µs/call',
      'added latency µs/call',
      'stream: added p50 / p99 µs per chunk',
      `memory: retained heap MiB while ${MB} MB stream`,
    ],
    approaches.map((a) => [
      name(a),
      vs(a),
      baselineRow(a, range(S(a).ratioVsBaseline, 3)),
      baselineRow(a, range(S(a).addedLoopUs, 0, { signed: true })),
      baselineRow(a, range(S(a).addedCpuUs, 0, { signed: true })),
      baselineRow(a, range(S(a).addedLatencyUs, 0, { signed: true })),
      baselineRow(
        a,
        `${range(S(a).addedStreamP50, 0, { signed: true })} / ${range(S(a).addedStreamP99, 0, { signed: true })}`,
      ),
      range(S(a).retainedHeap, 1),
    ]),
  );
  const callsTable = table(
    [
      'approach',
      `calls/s at concurrency ${CONCURRENCY}`,
      'ratio vs raw fetch',
      'ratio vs its baseline',
      'median latency µs (sequential)',
      'added latency µs',
      'event-loop utilization',
      'event-loop busy µs/call',
      'added event-loop µs/call',
      'added event-loop µs/call (sequential)',
      'client CPU µs/call',
      'added CPU µs/call',
      'spans/call',
    ],
    approaches.map((a) => [
      name(a),
      range(S(a).rate),
      a.id === 'raw' ? '1' : range(S(a).ratioVsRaw, 3),
      a.baseline === 'openai' ? range(S(a).ratioVsBaseline, 3) : a.baseline ? '(same)' : '–',
      range(S(a).latencyUs),
      a.baseline ? range(S(a).addedLatencyUs, 0, { signed: true }) : '–',
      range(S(a).loopUtilization, 2),
      range(S(a).loopUsPerCall),
      a.baseline ? range(S(a).addedLoopUs, 0, { signed: true }) : '–',
      a.baseline ? range(S(a).addedSeqLoopUs, 0, { signed: true }) : '–',
      range(S(a).cpuUsPerCall),
      a.baseline ? range(S(a).addedCpuUs, 0, { signed: true }) : '–',
      S(a).spansPerCall === undefined ? '–' : fmt(S(a).spansPerCall, 2),
    ]),
  );
  // --- goals (issue 14), judged on the median over rounds of a per-round figure ------------------
  const ran = (id) => summary[id] && !summary[id].failed && summary[id].rate.n > 0;
  /** Per round, `fn(round)` where every approach in `ids` has a figure; summarised. */
  const across = (ids, fn) =>
    summarize(rounds.filter((r) => ids.every((id) => r.calls[id])).map((r) => fn(r.calls)));
  const loop = (c, id) => c[id].loopUsPerCall;
  const ratio = (c, id) => c[id].rate / c.raw.rate;
  const us = (x) => `${range(x, 0, { signed: true })} µs`;
  const goal = (text, ids, measure) => {
    const missing = ids.filter((id) => !ran(id));
    if (missing.length) {
      const optional = missing.filter((id) => APPROACHES.find((a) => a.id === id)?.optional);
      return [
        text,
        `not run (${missing.join(', ')}${optional.length ? `; add --with=${optional.join(',')}` : ''})`,
        '–',
      ];
    }
    const { shown, ok } = measure();
    return [text, shown, ok === undefined ? '–' : ok ? 'PASS' : 'MISS'];
  };
  const goals = [
    goal(
      'default configuration (meter-default) adds ≤ 100 µs of event-loop time per call',
      ['meter-default'],
      () => {
        const x = S({ id: 'meter-default' }).addedLoopVsRawUs;
        return { shown: us(x), ok: x.median <= 100 };
      },
    ),
    goal('default configuration: throughput ratio vs raw fetch ≥ 0.85', ['meter-default'], () => {
      const x = S({ id: 'meter-default' }).ratioVsRaw;
      return { shown: range(x, 3), ok: x.median >= 0.85 };
    }),
    goal(
      "default configuration: throughput ratio not below the bare undici span's",
      ['meter-default', 'undici'],
      () => {
        const d = across(
          ['raw', 'undici', 'meter-default'],
          (c) => ratio(c, 'meter-default') - ratio(c, 'undici'),
        );
        return {
          shown: `${range(S({ id: 'meter-default' }).ratioVsRaw, 3)} vs ${range(S({ id: 'undici' }).ratioVsRaw, 3)}; per round ${range(d, 3, { signed: true })}`,
          ok: d.median >= 0,
        };
      },
    ),
    goal(
      "telemetry only (meter, database: false) adds no more event-loop time per call than undici's span",
      ['meter', 'undici'],
      () => {
        const d = across(['raw', 'undici', 'meter'], (c) => loop(c, 'meter') - loop(c, 'undici'));
        return {
          shown: `${us(S({ id: 'meter' }).addedLoopVsRawUs)} vs ${us(S({ id: 'undici' }).addedLoopVsRawUs)}; per round ${us(d)}`,
          ok: d.median <= 0,
        };
      },
    ),
    goal(
      'a blocking budget (meter-block) adds ≤ 100 µs of event-loop time per call over meter-default',
      ['meter-block', 'meter-default'],
      () => {
        const d = across(
          ['meter-block', 'meter-default'],
          (c) => loop(c, 'meter-block') - loop(c, 'meter-default'),
        );
        return { shown: us(d), ok: d.median <= 100 };
      },
    ),
    goal(
      'an alert-only budget (meter-alert) adds nothing measurable over meter-default (≤ 5 µs, or a min–max range that includes 0)',
      ['meter-alert', 'meter-default'],
      () => {
        const d = across(
          ['meter-alert', 'meter-default'],
          (c) => loop(c, 'meter-alert') - loop(c, 'meter-default'),
        );
        return { shown: us(d), ok: d.median <= 5 || (d.n > 1 && d.min <= 0 && d.max >= 0) };
      },
    ),
  ];
  const goalsTable = table(['goal', 'measured: median (min–max) over rounds', 'verdict'], goals);

  const streamTable = table(
    ['approach', 'chunk latency p50 µs', 'p99 µs', 'max µs', 'added p50 µs', 'added p99 µs'],
    approaches.map((a) => [
      name(a),
      range(S(a).streamP50),
      range(S(a).streamP99),
      range(S(a).streamMax),
      a.baseline ? range(S(a).addedStreamP50, 0, { signed: true }) : '–',
      a.baseline ? range(S(a).addedStreamP99, 0, { signed: true }) : '–',
    ]),
  );
  const memoryTable = table(
    [
      'approach',
      'MB/s',
      'retained heap MiB (max)',
      'added retained heap MiB',
      'retained buffers MiB (max)',
      'peak RSS growth MiB',
      'heap after MiB',
      'last chunk to end of stream ms',
    ],
    approaches.map((a) => [
      name(a),
      range(S(a).mbPerSecond),
      range(S(a).retainedHeap, 1),
      a.baseline ? range(S(a).addedRetainedHeap, 1, { signed: true }) : '–',
      range(S(a).retainedBuffers, 1),
      range(S(a).peakRss, 1),
      range(S(a).afterHeap, 1),
      range(S(a).endMs, 1),
    ]),
  );
  const checks = approaches
    .filter((a) => S(a).final)
    .map((a) => {
      const f = S(a).final;
      const bits = [`${fmt(f.calls)} calls`];
      if (f.spans !== undefined) bits.push(`${fmt(f.spans)} spans exported`);
      if (f.meter) bits.push(`meter: ${fmt(f.meter.calls)} metered, ${fmt(f.meter.sinkErrors)} sink errors`);
      if (f.rows !== undefined) bits.push(`${fmt(f.rows)} rows in the store`);
      if (f.budgets?.length)
        bits.push(`budgets: ${f.budgets.map((b) => `${b.name} $${fmt(b.spent_usd, 4)}`).join(', ')}`);
      return `- ${a.id}: ${bits.join('; ')}`;
    });

  const minutes = (Date.now() - started) / 60_000;
  const markdown = [
    '## Per-call overhead across approaches (`bench/compare.mjs`)',
    '',
    `${ROUNDS} rounds after a discarded warm-up, approaches interleaved (the first rotates each round), each in its own process; median (min–max) over rounds of the per-round figure. ${fmt(minutes, 1)} min.`,
    '',
    '### Headline',
    '',
    headline,
    '',
    `Throughput ratio: calls/s at concurrency ${CONCURRENCY} over the baseline's in the same round (1.000 = no cost). Added event-loop time: the client's main-thread busy time per call (the active time of a performance.eventLoopUtilization() delta over the ${REQUESTS} concurrent calls, i.e. utilization × wall time, divided by the calls) minus the baseline's: the time a service's event loop cannot spend on anything else. Added CPU: the client process's user+system CPU per call minus the baseline's, every thread of the process (GC helpers, libuv, the SQLite store's checkpoint worker), so it can exceed the event-loop figure. Added latency: median of ${SEQUENTIAL} sequential calls minus the baseline's. Stream: p50 and p99 of the per-chunk latency minus the baseline's (${CHUNKS} chunks, one every ${INTERVAL} ms; on a loaded machine p99 is scheduler noise). Memory: heap retained after a full gc, sampled every 2 MB while ${MB} MB of SSE flow through.`,
    '',
    '### Goals (issue 14)',
    '',
    goalsTable,
    '',
    "Event-loop figures are over raw fetch in the same round; a verdict is the median's, so read it with the min–max beside it (on a shared machine single rounds swing). The budget rows compare against meter-default in the same round.",
    '',
    `### Non-streaming calls to the simulator (${REQUESTS} calls at concurrency ${CONCURRENCY}, then ${SEQUENTIAL} sequential, per round)`,
    '',
    callsTable,
    '',
    `Event-loop utilization near 1 means the client's main thread was the bottleneck at concurrency ${CONCURRENCY} (on loopback it usually is), so its busy time per call is close to wall time per call. The event-loop time is wall-clock time inside callbacks: on a loaded machine it includes time the process was preempted and can exceed its CPU time; on an idle one it is the main thread's CPU time. The sequential column is the same measure over the ${SEQUENTIAL} sequential calls, where each call's work (a store commit included) runs alone.`,
    '',
    `### Streaming: chunk latency at the consumer (${CHUNKS} chunks, one every ${INTERVAL} ms, one stream per round)`,
    '',
    streamTable,
    '',
    "Latency: arrival at the consumer minus the server's send stamp, both on the system-wide monotonic clock. fetch-based approaches see bytes (read from the body); openai-client approaches see parsed chunks from the client's stream iterator.",
    '',
    `### Memory while streaming ${MB} MB of SSE (MiB over a gc'd baseline)`,
    '',
    memoryTable,
    '',
    "Retained: heap after a full gc, sampled every 2 MB while the stream flows (what the instrumentation holds on to); heap after: once the stream has ended and the telemetry is flushed. Last chunk to end: from the consumer's last chunk to the end of its iteration, work done when the stream ends (synchronous work there blocks the event loop).",
    '',
    'Sanity checks (the instrumentation did record):',
    '',
    ...checks,
    '',
  ].join('\n');

  const out = {
    markdown,
    meta: {
      rounds: ROUNDS,
      requests: REQUESTS,
      concurrency: CONCURRENCY,
      sequential: SEQUENTIAL,
      chunks: CHUNKS,
      interval: INTERVAL,
      mb: MB,
      minutes,
    },
    approaches,
    summary,
    goals: goals.map(([goal, measured, verdict]) => ({ goal, measured, verdict })),
    rounds,
  };
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'out', 'compare.md'), markdown);
  writeFileSync(join(ROOT, 'bench', 'out', 'compare.json'), JSON.stringify(out, null, 2));
  if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else process.stdout.write(markdown);
  process.exit(0);
}

// bench/profile.mjs imports this file for its approaches and server; only run when executed.
const executed = process.argv[1] && realpathSync(process.argv[1]) === realpathSync(SELF);
if (executed) {
  if (ROLE === 'server') await serve();
  else if (ROLE === 'worker') await work(args.approach);
  else await main();
}
