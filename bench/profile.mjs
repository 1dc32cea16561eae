#!/usr/bin/env node
// Where the microseconds of a metered call go: a V8 CPU profile of llm-meter at its default
// configuration against one of raw fetch, per call, by where the code lives.
//
//   npm run build && node bench/profile.mjs [--rounds=3] [--requests=3000] [--concurrency=16]
//     [--sequential=500] [--interval=100] [--approaches=raw,meter-default] [--quick] [--json]
//
//   --approaches  the baseline first, then the approach whose cost is broken down (any fetch
//                 approach of bench/compare.mjs: meter, meter-default, meter-alert, meter-block…)
//   --interval    the sampling interval in µs (V8's default is 1000; smaller is finer and costs
//                 more, on both sides alike)
//   --quick       1 round of 400 + 100 calls: a smoke test of the script, not figures to publish
//
// Each approach runs in a long-lived child process of its own, set up exactly as in
// bench/compare.mjs (the same OpenTelemetry SDK, context manager and propagator; meter-default is
// createMeter({ database: <a temporary SQLite file>, tracerProvider })), against the simulator in
// one more process. Per round (a discarded warm-up first; the order alternates by round), each
// worker profiles its own main thread with the inspector (node:inspector Session,
// Profiler.start/stop) while it makes `--requests` calls at `--concurrency` and then
// `--sequential` calls one at a time. The self time of every sample (the time to the next sample)
// goes to a bucket by the source file of its frame:
//
//   dist/<dir>/*, dist/<file>.js     llm-meter's own code, by directory (fetch, store, budgets,
//                                    telemetry, providers, pricing, tokens…) or top-level file
//   @opentelemetry/*, undici (fetch and its llhttp WASM), better-sqlite3 (its JS and its native
//   methods: SQLite itself), gpt-tokenizer, @pydantic/genai-prices, other packages,
//   node: async_hooks (AsyncLocalStorage), node core (streams, http, timers…),
//   GC ((garbage collector)), V8 outside JS ((program)), the benchmark's own code.
//
// A native frame (a C++ function called from JS) is charged to its JS caller's bucket, except
// better-sqlite3's statement and database methods, which are SQLite's work. Idle samples are not
// busy time and are left out. Worker threads (the store's checkpointer) are not profiled: their
// CPU is not event-loop time. Figures are µs per call: the bucket's self time over the calls
// made while profiling; "added" is the approach's figure minus the baseline's in the same round,
// median (min–max) over rounds. The top functions pool the rounds.
//
// Output: Markdown on stdout (and bench/out/profile.md; the last round's profiles as
// bench/out/profile-<approach>.cpuprofile, to open in Chrome DevTools); with --json, one JSON
// object instead ({ markdown, meta, buckets, functions, rounds }). Progress goes to stderr.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APPROACHES, setupApproach, startServer } from './compare.mjs';
import { alternate, concurrently } from './lib/rounds.mjs';
import { fmt, fmtSigned, parseArgs, range, summarize, table } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const OUT_DIR = join(ROOT, 'bench', 'out');
const args = parseArgs();
const log = (...a) => console.error(...a);

// ============================================================================= attribution

const ROOT_URL = new URL('..', import.meta.url).href;
// better-sqlite3's methods implemented in C++ (Statement and Database): SQLite's own work.
const SQLITE_NATIVE = new Set([
  'run',
  'get',
  'all',
  'iterate',
  'bind',
  'pluck',
  'expand',
  'raw',
  'columns',
  'safeIntegers',
  'prepare',
  'exec',
  'close',
  'serialize',
  'function',
  'aggregate',
  'table',
  'loadExtension',
  'backup',
  'get inTransaction',
  'get open',
]);

/** Where a script's code lives: 'dist/store/sqlite.js', 'node:internal/…', '@opentelemetry/api/…'. */
function shortFile(url) {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  if (url.startsWith(ROOT_URL)) return url.slice(ROOT_URL.length);
  if (url.startsWith('/')) return url;
  return url.replace(/^file:\/\//, '');
}

/** The bucket of a JS frame by its script's URL. */
function bucketOfUrl(url) {
  if (url.startsWith('node:internal/deps/undici') || url.startsWith('wasm://'))
    return 'undici (fetch, llhttp)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    if (pkg.startsWith('@opentelemetry/')) return '@opentelemetry/*';
    if (pkg === 'undici') return 'undici (fetch, llhttp)';
    if (pkg === 'better-sqlite3') return 'better-sqlite3 (JS + native: SQLite)';
    if (pkg === 'gpt-tokenizer' || pkg === '@pydantic/genai-prices') return pkg;
    return 'other packages';
  }
  if (url.startsWith(`${ROOT_URL}dist/`)) {
    const rel = url.slice(`${ROOT_URL}dist/`.length).split('/');
    return rel.length > 1 ? `dist/${rel[0]}/*` : `dist/${rel[0]}`;
  }
  if (url.startsWith(`${ROOT_URL}bench/`)) return 'benchmark harness';
  if (/^node:(internal\/)?async_(hooks|local_storage)/.test(url))
    return 'node: async_hooks (AsyncLocalStorage)';
  if (url.startsWith('node:')) return 'node core (streams, http, timers, …)';
  return 'other';
}

const SPECIAL = {
  '(garbage collector)': 'GC',
  '(program)': '(program): V8 outside JS',
  '(root)': '(program): V8 outside JS',
  '(idle)': null,
};

/**
 * A CPU profile's self time, µs, by bucket and by function. Each sample's time is the time to the
 * next sample (the last one gets the median interval).
 */
export function attribute(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const deltas = profile.timeDeltas;
  const sorted = [...deltas.slice(1)].sort((a, b) => a - b);
  const typical = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const selfUs = new Map();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (i + 1 < deltas.length ? deltas[i + 1] : typical));
  });

  const describe = new Map();
  const describeNode = (id) => {
    if (describe.has(id)) return describe.get(id);
    const { callFrame } = byId.get(id);
    const name = callFrame.functionName;
    let d;
    if (name in SPECIAL && !callFrame.url) {
      d = SPECIAL[name] === null ? null : { bucket: SPECIAL[name], key: name };
    } else if (callFrame.url) {
      d = {
        bucket: bucketOfUrl(callFrame.url),
        key: `${shortFile(callFrame.url)}:${name || '(anonymous)'}:${callFrame.lineNumber + 1}`,
      };
    } else {
      // Native: charged to the nearest JS caller, unless it is one of better-sqlite3's methods.
      let up = parent.get(id);
      while (up !== undefined && !byId.get(up).callFrame.url) up = parent.get(up);
      const caller = up === undefined ? null : byId.get(up).callFrame;
      const callerBucket = caller ? bucketOfUrl(caller.url) : 'other';
      const sqlite =
        SQLITE_NATIVE.has(name) &&
        (callerBucket.startsWith('better-sqlite3') || /^dist\/(store|budgets)\//.test(callerBucket));
      d = {
        bucket: sqlite ? 'better-sqlite3 (JS + native: SQLite)' : callerBucket,
        key: `(native) ${name || '(anonymous)'} ← ${caller ? `${shortFile(caller.url)}:${caller.functionName || '(anonymous)'}` : '?'}`,
      };
    }
    describe.set(id, d);
    return d;
  };

  // The nearest llm-meter frame on a sample's stack (itself included): the code that caused it.
  // Not across the upstream fetch itself: what runs inside the fetch llm-meter wraps is the
  // call's own work, which the baseline does too.
  const DIST = `${ROOT_URL}dist/`;
  const cause = new Map();
  const causeOf = (id) => {
    if (cause.has(id)) return cause.get(id);
    const { url, functionName } = byId.get(id).callFrame;
    const up = parent.get(id);
    const upstream = functionName === 'fetch' && bucketOfUrl(url).startsWith('undici');
    const c = url.startsWith(DIST) ? bucketOfUrl(url) : upstream || up === undefined ? null : causeOf(up);
    cause.set(id, c);
    return c;
  };

  const buckets = {};
  const causes = {};
  const functions = {};
  let busyUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const d = describeNode(id);
    if (!d) {
      idleUs += us;
      continue;
    }
    busyUs += us;
    buckets[d.bucket] = (buckets[d.bucket] ?? 0) + us;
    const c = causeOf(id) ?? d.bucket;
    causes[c] = (causes[c] ?? 0) + us;
    functions[d.key] ??= { us: 0, bucket: d.bucket };
    functions[d.key].us += us;
  }
  return { buckets, causes, functions, busyUs, idleUs, samples: profile.samples.length, intervalUs: typical };
}

// ============================================================================= worker process

async function work(id) {
  const urls = JSON.parse(args.urls);
  const a = await setupApproach(id, urls);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');

  const handlers = {
    async profile({ requests, concurrency, sequential, interval, save }) {
      // Reopen keep-alive connections that timed out while the other approach ran.
      await Promise.all(Array.from({ length: concurrency }, () => a.call()));
      await session.post('Profiler.setSamplingInterval', { interval });
      await session.post('Profiler.start');
      const elu0 = performance.eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await concurrently(requests, concurrency, () => a.call());
      for (let i = 0; i < sequential; i++) await a.call();
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      const { profile } = await session.post('Profiler.stop');
      if (save) writeFileSync(join(OUT_DIR, `profile-${id}.cpuprofile`), JSON.stringify(profile));
      return {
        calls: requests + sequential,
        wallMs,
        loopUs: elu.active * 1000,
        cpuUs: cpu.user + cpu.system,
        ...attribute(profile),
      };
    },
    async flush() {
      await a.flush();
      return true;
    },
  };

  process.on('message', async ({ seq, cmd, ...params }) => {
    try {
      process.send({ seq, ok: true, value: await handlers[cmd](params) });
    } catch (error) {
      process.send({ seq, ok: false, error: String(error?.stack ?? error) });
    }
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
  process.send({ seq: 0, ok: true, value: 'ready' });
}

// ============================================================================= orchestrator

function startWorker(id, urls) {
  const child = spawn(
    process.execPath,
    [SELF, '--role=worker', `--approach=${id}`, `--urls=${JSON.stringify(urls)}`],
    {
      stdio: ['ignore', 2, 2, 'ipc'],
    },
  );
  const pending = new Map();
  let seq = 0;
  child.on('message', (msg) => {
    const p = pending.get(msg.seq);
    if (!p) return;
    pending.delete(msg.seq);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${id} worker exited (${code ?? signal})`));
    pending.clear();
  });
  const wait = (n) => new Promise((resolve, reject) => pending.set(n, { resolve, reject }));
  return {
    ready: wait(0),
    ask(cmd, params = {}) {
      const n = ++seq;
      const answer = wait(n);
      child.send({ seq: n, cmd, ...params });
      return answer;
    },
    close: () => child.kill('SIGTERM'),
  };
}

async function main() {
  const QUICK = args.quick === 'true';
  const ROUNDS = Number(args.rounds ?? (QUICK ? 1 : 3));
  const REQUESTS = Number(args.requests ?? (QUICK ? 400 : 3000));
  const CONCURRENCY = Number(args.concurrency ?? 16);
  const SEQUENTIAL = Number(args.sequential ?? (QUICK ? 100 : 500));
  const INTERVAL = Number(args.interval ?? 100);
  const [BASE, SUBJECT] = String(args.approaches ?? 'raw,meter-default').split(',');
  for (const id of [BASE, SUBJECT]) {
    const a = APPROACHES.find((x) => x.id === id);
    if (a?.kind !== 'fetch') throw new Error(`profile: ${id} is not a fetch approach of bench/compare.mjs`);
  }
  const label = (id) => APPROACHES.find((x) => x.id === id).label;
  const started = Date.now();
  mkdirSync(OUT_DIR, { recursive: true });

  const { child: server, urls } = await startServer();
  const workers = {};
  for (const id of [BASE, SUBJECT]) {
    log(`profile: starting ${id}`);
    workers[id] = startWorker(id, urls);
    await workers[id].ready;
  }

  const rounds = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const warm = round === 0;
    const order = alternate(round, [BASE, SUBJECT]);
    log(
      `profile: ${warm ? 'warm-up round (discarded)' : `round ${round}/${ROUNDS}`}, order ${order.join(', ')}`,
    );
    const result = {};
    for (const id of order) {
      result[id] = await workers[id].ask('profile', {
        requests: warm ? Math.ceil(REQUESTS / 4) : REQUESTS,
        concurrency: CONCURRENCY,
        sequential: warm ? Math.ceil(SEQUENTIAL / 4) : SEQUENTIAL,
        interval: INTERVAL,
        save: round === ROUNDS,
      });
    }
    for (const id of order) await workers[id].ask('flush');
    if (!warm) rounds.push(result);
    log(
      `  ${order.map((id) => `${id} ${fmt(result[id].busyUs / result[id].calls)} µs busy/call (${fmt(result[id].samples)} samples)`).join(', ')}`,
    );
  }
  for (const w of Object.values(workers)) w.close();
  server.stdin.end();

  // --- per call, per round; added = subject − baseline in the same round -------------------------
  const perCall = (r, id, us) => us / r[id].calls;
  const bucketNames = [
    ...new Set(
      rounds.flatMap((r) =>
        [BASE, SUBJECT].flatMap((id) => [...Object.keys(r[id].buckets), ...Object.keys(r[id].causes)]),
      ),
    ),
  ];
  const bucketRow = (name) => {
    const of = (id, field) => rounds.map((r) => perCall(r, id, r[id][field][name] ?? 0));
    const base = of(BASE, 'buckets');
    const subject = of(SUBJECT, 'buckets');
    const baseCause = of(BASE, 'causes');
    return {
      name,
      base: summarize(base),
      subject: summarize(subject),
      added: summarize(subject.map((x, i) => x - base[i])),
      addedByCause: summarize(of(SUBJECT, 'causes').map((x, i) => x - baseCause[i])),
    };
  };
  const buckets = bucketNames.map(bucketRow).sort((x, y) => y.added.median - x.added.median);
  const totalOf = (field) => {
    const of = (id) => rounds.map((r) => perCall(r, id, r[id][field]));
    const base = of(BASE);
    const subject = of(SUBJECT);
    return {
      base: summarize(base),
      subject: summarize(subject),
      added: summarize(subject.map((x, i) => x - base[i])),
    };
  };
  const busy = totalOf('busyUs');
  const loop = totalOf('loopUs');
  const cpu = totalOf('cpuUs');

  // Functions: pooled over rounds.
  const pooled = (id) => {
    const calls = rounds.reduce((t, r) => t + r[id].calls, 0);
    const out = new Map();
    for (const r of rounds) {
      for (const [key, f] of Object.entries(r[id].functions)) {
        const prev = out.get(key) ?? { us: 0, bucket: f.bucket };
        prev.us += f.us;
        out.set(key, prev);
      }
    }
    for (const f of out.values()) f.perCall = f.us / calls;
    return out;
  };
  const fBase = pooled(BASE);
  const fSubject = pooled(SUBJECT);
  const functions = [...new Set([...fBase.keys(), ...fSubject.keys()])]
    .map((key) => {
      const b = fBase.get(key)?.perCall ?? 0;
      const s = fSubject.get(key)?.perCall ?? 0;
      return { key, bucket: (fSubject.get(key) ?? fBase.get(key)).bucket, base: b, subject: s, added: s - b };
    })
    .sort((x, y) => y.added - x.added);
  const top = functions.slice(0, 15);
  const topSelf = [...functions].sort((x, y) => y.subject - x.subject).slice(0, 15);

  // --- report ----------------------------------------------------------------------------------
  const us = (s) => range(s, 1);
  const signed = (s) => range(s, 1, { signed: true });
  const bucketTable = table(
    [
      'where (self time)',
      `${BASE} µs/call`,
      `${SUBJECT} µs/call`,
      'added µs/call',
      'added µs/call, charged to the nearest llm-meter frame on the stack',
    ],
    [
      ...buckets.map((b) => [b.name, us(b.base), us(b.subject), signed(b.added), signed(b.addedByCause)]),
      [
        '**total busy (profiled samples, idle excluded)**',
        us(busy.base),
        us(busy.subject),
        signed(busy.added),
        signed(busy.added),
      ],
      [
        'event-loop busy (ELU active time, same window)',
        us(loop.base),
        us(loop.subject),
        signed(loop.added),
        '',
      ],
      ['process CPU (user + system, every thread)', us(cpu.base), us(cpu.subject), signed(cpu.added), ''],
    ],
  );
  const fnRow = (f) => [`\`${f.key}\``, f.bucket, fmt(f.base, 1), fmt(f.subject, 1), fmtSigned(f.added, 1)];
  const fnHeader = [
    'function (file:name:line)',
    'bucket',
    `${BASE} µs/call`,
    `${SUBJECT} µs/call`,
    'added µs/call',
  ];
  const addedTable = table(fnHeader, top.map(fnRow));
  const selfTable = table(fnHeader, topSelf.map(fnRow));
  const samples = rounds.map((r) => r[SUBJECT].samples);
  const intervals = rounds.map((r) => r[SUBJECT].intervalUs);
  const minutes = (Date.now() - started) / 60_000;

  const markdown = [
    '## Where the microseconds go (`bench/profile.mjs`)',
    '',
    `${label(SUBJECT)} against ${label(BASE)}, each in its own process set up as in bench/compare.mjs, profiled with the V8 sampling profiler (requested interval ${INTERVAL} µs; the samples came every ${range(intervals, 0)} µs) while it made ${fmt(REQUESTS)} calls at concurrency ${CONCURRENCY} and then ${fmt(SEQUENTIAL)} one at a time; ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} after a discarded warm-up, ${range(samples)} samples per round. Self time per call, median (min–max) over rounds; added = ${SUBJECT} − ${BASE} in the same round. ${fmt(minutes, 1)} min.`,
    '',
    '### Per call, by where the code lives',
    '',
    bucketTable,
    '',
    "Self time goes to the bucket of the code that ran it. The last column charges each sample instead to the nearest llm-meter (dist/) frame on its synchronous stack, so the node core, undici, OpenTelemetry and SQLite work llm-meter's code calls counts as that code's; what remains in the other rows ran outside any llm-meter frame (socket and stream callbacks, promise jobs, GC). Native frames count for their JS caller's bucket, except better-sqlite3's statement and database methods (SQLite's work). The profiler's own overhead inflates both sides alike (set the busy total beside bench/compare.mjs's unprofiled event-loop figures); worker threads (the store's checkpointer) are not profiled, so process CPU can exceed the busy total.",
    '',
    `### Top 15 functions by self time added per call (${SUBJECT} − ${BASE}, rounds pooled)`,
    '',
    addedTable,
    '',
    `### Top 15 functions by self time per call in ${SUBJECT}`,
    '',
    selfTable,
    '',
    `Profiles of the last round: \`bench/out/profile-${BASE}.cpuprofile\`, \`bench/out/profile-${SUBJECT}.cpuprofile\` (Chrome DevTools → Performance → Load profile).`,
    '',
  ].join('\n');

  const out = {
    markdown,
    meta: {
      rounds: ROUNDS,
      requests: REQUESTS,
      concurrency: CONCURRENCY,
      sequential: SEQUENTIAL,
      interval: INTERVAL,
      baseline: BASE,
      subject: SUBJECT,
      minutes,
    },
    buckets,
    totals: { busy, loop, cpu },
    functions: functions.slice(0, 100),
    rounds: rounds.map((r) =>
      Object.fromEntries(Object.entries(r).map(([id, x]) => [id, { ...x, functions: undefined }])),
    ),
  };
  writeFileSync(join(OUT_DIR, 'profile.md'), markdown);
  writeFileSync(join(OUT_DIR, 'profile.json'), JSON.stringify(out, null, 2));
  if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else process.stdout.write(markdown);
  process.exit(0);
}

if (args.role === 'worker') await work(args.approach);
else await main();
