// Usage store benchmark: rows persisted per second, the hot-path cost of write(), the two
// commit schedules, the event-loop time per write() of each durability, and summary latency over
// 1M (and 10M) rows with rollups vs a raw scan.
//
//   npx tsc -p tsconfig.build.json && node bench/store.mjs [--rows=1000000] [--big=10000000] [--days=30]
//   node --expose-gc bench/store.mjs --only=durability [--durability=commit,journal,async]
//     [--iterations=5000] [--rounds=5]      the durability section alone (a smoke run: --rounds=1)
//
// Run by hand, on an otherwise idle machine; numbers go to stdout. Files go to $TMPDIR.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { registerBucketFunctions } from '../dist/store/buckets.js';
import { registerHistogramFunctions } from '../dist/store/histogram.js';
import { openSqliteStore } from '../dist/store/sqlite.js';
import { summarySql } from '../dist/store/summary.js';
import { fmt, parseArgs, quantile, range } from './lib/stats.mjs';

const args = parseArgs();
const ONLY = args.only ?? null;
const ROWS = ONLY === null ? Number(args.rows ?? 1_000_000) : 0;
const BIG = Number(args.big ?? 0);
const DAYS = Number(args.days ?? 30);
const HOUR = 3_600_000;
const dir = args.keep ? tmpdir() : mkdtempSync(join(tmpdir(), 'llm-meter-bench-'));
const turn = () => new Promise((resolve) => setImmediate(resolve));

const MODELS = [
  ['gpt-4o-mini', 'openai'],
  ['gpt-4o', 'openai'],
  ['claude-sonnet-4', 'anthropic'],
  ['claude-haiku-3-5', 'anthropic'],
  ['gemini-2.0-flash', 'gcp.gemini'],
  ['llama3.1:8b', 'ollama'],
];

let seq = 0;
function makeRecord(startMs) {
  seq++;
  const [model, provider] = MODELS[seq % MODELS.length];
  // The same shape as the bulk-loaded data: 200 users, a few heavy ones; a user belongs to one
  // project and uses three features.
  const u = Math.floor(Math.random() ** 3 * 200);
  const user = `user-${u}`;
  const durationMs = 200 + Math.random() * 5000;
  return {
    id: `bench-${process.pid}-${seq}`,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    provider,
    operation: 'chat',
    requestModel: model,
    responseModel: model,
    responseId: `resp-${seq}`,
    serverAddress: 'api.example.com',
    serverPort: 443,
    request: {
      parsed: true,
      model,
      stream: true,
      maxTokens: 1024,
      temperature: 0.2,
      choices: 1,
      toolCount: 0,
    },
    attribution: {
      user,
      project: `project-${seq % 5}`,
      feature: `feature-${seq % 10}`,
      tags: { env: 'prod' },
    },
    outcome: 'ok',
    errorType: null,
    errorCode: null,
    retryable: null,
    retryAfterMs: null,
    httpStatus: 200,
    rateLimit: null,
    finishReasons: ['stop'],
    usage: {
      inputTokens: 1200,
      outputTokens: 350,
      cacheReadTokens: 400,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      source: 'provider',
    },
    toolCalls: 0,
    preflight: {
      inputTokensEstimate: null,
      projectedMaxCostNanos: null,
      contextWindow: null,
      contextExceeded: null,
    },
    cost: {
      totalNanos: provider === 'ollama' ? null : 412_500,
      inputNanos: null,
      cacheReadNanos: null,
      cacheWriteNanos: null,
      outputNanos: null,
      source: 'catalog',
      pricedAs: model,
    },
    timing: {
      startMs,
      headersMs: startMs + 150,
      firstTokenMs: startMs + 300,
      lastTokenMs: startMs + durationMs,
      endMs: startMs + durationMs,
      durationMs,
      timeToFirstTokenMs: 300,
      generationMs: durationMs - 300,
      outputTokensPerSecond: 80,
      queue: null,
      prefill: null,
      generation: { ms: durationMs - 300, source: 'observed' },
      serverProcessingMs: null,
    },
    chunks: 40,
  };
}

function records(n) {
  const start = Date.UTC(2025, 0, 1);
  return Array.from({ length: n }, (_, i) => makeRecord(start + i * 50));
}

async function persistence() {
  console.log(
    '\n## Persistence (WAL, synchronous=NORMAL; usage + 9 indexes, 3 rollup tables + 3 indexes per commit)',
  );
  const n = 200_000;
  for (const [name, burst] of [
    ['bursts of 1000 per tick', 1000],
    ['bursts of 100 per tick', 100],
    ['all in one tick (10k per transaction)', n],
  ]) {
    const data = records(n);
    const store = openSqliteStore({ path: join(dir, `persist-${burst}.db`), durability: 'commit' });
    const t0 = performance.now();
    for (let i = 0; i < n; i += burst) {
      for (let j = i; j < Math.min(n, i + burst); j++) store.write(data[j]);
      await turn();
    }
    await store.flush();
    const ms = performance.now() - t0;
    await store.close();
    console.log(`${name.padEnd(40)} ${fmt(n / (ms / 1000))} rows/s`);
  }
}

async function hotPath() {
  console.log("\n## Hot path ('commit' durability)");
  const n = 200_000;
  const data = records(n);
  const store = openSqliteStore({ path: join(dir, 'hot.db'), durability: 'commit' });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) store.write(data[i]);
  const callMs = performance.now() - t0;
  await store.flush();
  console.log(`write() call alone (enqueue)                ${fmt((callMs * 1000) / n, 3)} µs/call`);

  // One completed call per loop turn (sequential traffic): each commit is a 1-row transaction.
  const iterations = 5_000;
  const single = records(iterations);
  let t = performance.now();
  for (let i = 0; i < iterations; i++) await turn();
  const baseline = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < iterations; i++) {
    store.write(single[i]);
    await turn();
  }
  const withWrite = performance.now() - t;
  console.log(
    `added per call, one call per turn (1-row commit) ${fmt(((withWrite - baseline) * 1000) / iterations, 1)} µs/call`,
  );
  await store.close();

  // K calls completing in the same loop phase (K I/O callbacks): the microtask schedule commits
  // after each callback, setImmediate once for the whole phase.
  const K = 50;
  const rounds = 200;
  for (const scheduling of ['microtask', 'immediate']) {
    const s = openSqliteStore({
      path: join(dir, `sched-${scheduling}.db`),
      durability: 'commit',
      commitScheduling: scheduling,
    });
    const data2 = records(K * rounds);
    const t1 = performance.now();
    for (let r = 0; r < rounds; r++) {
      await new Promise((resolve) => {
        let left = K;
        for (let k = 0; k < K; k++) {
          setImmediate(() => {
            s.write(data2[r * K + k]);
            if (--left === 0) setImmediate(resolve);
          });
        }
      });
    }
    await s.flush();
    const ms = performance.now() - t1;
    await s.close();
    console.log(
      `${K} completions per phase, ${scheduling.padEnd(9)} schedule  ${fmt((ms * 1000) / (K * rounds), 1)} µs/call (${scheduling === 'microtask' ? 'durable before the next callback' : 'not durable until the next turn'})`,
    );
  }
}

const gc = globalThis.gc ?? (() => {});

/** Wall time of `n` turns of the event loop, each running `each(i)` first. */
async function turns(n, each) {
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    each(i);
    await turn();
  }
  return performance.now() - t;
}

/** `k` completions in one loop phase (k setImmediate callbacks), `rounds` times. */
async function phases(k, rounds, each) {
  const t = performance.now();
  for (let r = 0; r < rounds; r++) {
    await new Promise((resolve) => {
      let left = k;
      for (let j = 0; j < k; j++) {
        setImmediate(() => {
          each(r * k + j);
          if (--left === 0) setImmediate(resolve);
        });
      }
    });
  }
  return performance.now() - t;
}

/**
 * What write() costs the caller's event loop in each durability: the wall time of loop turns that
 * write one record each (sequential traffic: every commit is one row) or 16 per loop phase (16
 * calls completing together), minus the same turns without the write, in the same round. The
 * writer thread's commits run on another core, so they are not in these figures; the work its
 * acknowledgements cause on the event loop is. Then rows/s until flush() resolves, and the time
 * from write() to the commit's acknowledgement: what 'async' loses to a kill -9 while the thread
 * keeps up.
 */
async function durabilityCosts() {
  const modes = (args.durability ?? 'commit,journal,async').split(',');
  const n = Number(args.iterations ?? 5_000);
  const rounds = Number(args.rounds ?? 5);
  console.log(
    `\n## Event-loop time per write(), by durability (median (min–max) of ${rounds} rounds, modes interleaved)`,
  );
  const results = Object.fromEntries(modes.map((m) => [m, { single: [], burst: [], rate: [], ackMs: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (let m = 0; m < modes.length; m++) {
      const mode = modes[(m + round) % modes.length];
      const store = openSqliteStore({ path: join(dir, `durability-${mode}-${round}.db`), durability: mode });
      await store.flush();
      const warm = records(1_000);
      await turns(warm.length, (i) => store.write(warm[i]));
      await store.flush();

      const single = records(n);
      gc();
      const base1 = await turns(n, () => {});
      const with1 = await turns(n, (i) => store.write(single[i]));
      await store.flush();
      results[mode].single.push(((with1 - base1) * 1000) / n);

      const k = 16;
      const burst = records(n);
      gc();
      const base2 = await phases(k, n / k, () => {});
      const with2 = await phases(k, n / k, (i) => store.write(burst[i]));
      await store.flush();
      results[mode].burst.push(((with2 - base2) * 1000) / n);

      const bulk = records(50_000);
      gc();
      const t = performance.now();
      for (let i = 0; i < bulk.length; i += 100) {
        for (let j = i; j < i + 100; j++) store.write(bulk[j]);
        await turn();
      }
      await store.flush();
      results[mode].rate.push(bulk.length / ((performance.now() - t) / 1000));

      const probe = records(200);
      for (const record of probe) {
        const before = store.stats().written;
        const t0 = performance.now();
        store.write(record);
        while (store.stats().written === before) await turn();
        results[mode].ackMs.push(performance.now() - t0);
      }
      await store.close();
    }
  }
  const pad = (text, width) => String(text).padEnd(width);
  console.log(
    `${pad('durability', 11)} ${pad('µs/call, one per turn', 24)} ${pad('µs/call, 16 per phase', 24)} ${pad('rows/s (100 per tick)', 26)} write → committed p50 / p99 ms`,
  );
  for (const mode of modes) {
    const r = results[mode];
    console.log(
      `${pad(mode, 11)} ${pad(range(r.single, 1), 24)} ${pad(range(r.burst, 1), 24)} ${pad(range(r.rate, 0), 26)} ${fmt(quantile(r.ackMs, 0.5), 2)} / ${fmt(quantile(r.ackMs, 0.99), 2)}`,
    );
  }
}

/** Bulk-load `rows` synthetic calls spread over DAYS days straight in SQL, then the rollups. */
function bulkLoad(path, rows) {
  const store = openSqliteStore({ path });
  store.close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1000000');
  registerHistogramFunctions(db);
  registerBucketFunctions(db);
  const indexes = db
    .prepare(
      "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage' AND sql IS NOT NULL",
    )
    .all();
  for (const { name } of indexes) db.exec(`DROP INDEX ${name}`);
  const start = Date.UTC(2025, 0, 1);
  const span = DAYS * 24 * HOUR;
  // Deterministic hashes of n stand in for random(), which SQLite may re-evaluate per reference.
  const insert = db.prepare(`
    WITH RECURSIVE s(n) AS (SELECT CAST(? AS INTEGER) UNION ALL SELECT n + 1 FROM s WHERE n < ?),
    h AS (SELECT n,
      CAST(? AS INTEGER) + n * CAST(? AS INTEGER) / CAST(? AS INTEGER) AS t,
      (n * 2654435761) % 100 AS m,
      (n * 40503 + 7) % 1000 AS u,
      (n * 69069 + 3) % 100 AS o,
      (n * 1103515245 + 12345) % 4000 AS tin,
      (n * 22695477 + 1) % 800 AS tout,
      (n * 134775813 + 1) % 5000 AS d
      FROM s)
    INSERT INTO usage (id, time_ms, end_ms, provider, operation, model, request_model, response_model, user, project,
      feature, tags, stream, tool_count, outcome, error_type, finish_reasons, input_tokens, cached_input_tokens,
      cache_write_input_tokens, output_tokens, reasoning_tokens, tokens_estimated, tool_calls, chunks, cost_nanos,
      cost_source, duration_ms, ttft_ms)
    SELECT 'bulk-' || n, t, t + 200 + d,
      CASE WHEN m < 60 THEN 'openai' WHEN m < 85 THEN 'anthropic' WHEN m < 95 THEN 'gcp.gemini' ELSE 'ollama' END,
      'chat',
      CASE WHEN m < 40 THEN 'gpt-4o-mini' WHEN m < 60 THEN 'gpt-4o' WHEN m < 75 THEN 'claude-sonnet-4'
        WHEN m < 85 THEN 'claude-haiku-3-5' WHEN m < 95 THEN 'gemini-2.0-flash' ELSE 'llama3.1:8b' END,
      NULL, NULL,
      'user-' || ((u * u * u) / 5000000),
      'project-' || (((u * u * u) / 5000000) % 5),
      'feature-' || ((((u * u * u) / 5000000) * 7 + n % 3) % 10),
      '{}', 1, 0,
      CASE WHEN o < 97 THEN 'ok' WHEN o < 99 THEN 'error' ELSE 'cancelled' END,
      CASE WHEN o >= 97 AND o < 99 THEN 'rate_limited' END,
      '["stop"]', 200 + tin, tin / 4, 0, 50 + tout, 0, 0, 0, 40,
      CASE WHEN m >= 95 THEN NULL ELSE (200 + tin) * 150 + (50 + tout) * 600 END,
      'catalog', 200 + d, CASE WHEN o % 10 < 7 THEN 100 + d / 6 END
    FROM h`);
  let t = performance.now();
  const chunk = 1_000_000;
  for (let from = 0; from < rows; from += chunk) {
    db.transaction(() => insert.run(from, Math.min(rows, from + chunk) - 1, start, span, rows))();
  }
  db.exec("UPDATE usage SET request_model = model, response_model = model WHERE id LIKE 'bulk-%'");
  const loadS = (performance.now() - t) / 1000;
  t = performance.now();
  for (const { sql } of indexes) db.exec(sql);
  const indexS = (performance.now() - t) / 1000;
  t = performance.now();
  const sums = `count(*), sum(outcome = 'error'), coalesce(sum(input_tokens), 0), coalesce(sum(cached_input_tokens), 0),
    coalesce(sum(cache_write_input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(reasoning_tokens), 0),
    coalesce(sum(cost_nanos), 0), sum(cost_nanos IS NULL), total(duration_ms),
    llm_meter_hist_of(duration_ms), llm_meter_hist_of(ttft_ms)`;
  db.exec(`INSERT INTO usage_hourly SELECT (time_ms / ${HOUR}) * ${HOUR}, model, provider, coalesce(user, ''),
    coalesce(project, ''), coalesce(feature, ''), operation, outcome, ${sums} FROM usage GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`);
  db.exec(`INSERT INTO usage_daily SELECT (hour_ms / 86400000) * 86400000, model, provider, user, project, feature,
    operation, outcome, sum(requests), sum(errors), sum(input_tokens), sum(cached_input_tokens),
    sum(cache_write_input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cost_nanos), sum(unpriced_requests),
    sum(duration_ms_sum), llm_meter_hist_sum(latency_hist), llm_meter_hist_sum(ttft_hist)
    FROM usage_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`);
  db.exec(`INSERT INTO usage_model_hourly SELECT (time_ms / ${HOUR}) * ${HOUR}, model, provider, operation, outcome,
    ${sums} FROM usage GROUP BY 1, 2, 3, 4, 5`);
  const rollupS = (performance.now() - t) / 1000;
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.exec('ANALYZE');
  const fine = db.prepare('SELECT count(*) FROM usage_hourly').pluck().get();
  const daily = db.prepare('SELECT count(*) FROM usage_daily').pluck().get();
  const coarse = db.prepare('SELECT count(*) FROM usage_model_hourly').pluck().get();
  db.close();
  console.log(
    `loaded ${fmt(rows)} rows over ${DAYS} days: insert ${fmt(loadS, 1)} s, indexes ${fmt(indexS, 1)} s, rollups ${fmt(rollupS, 1)} s; ` +
      `usage_hourly ${fmt(fine)} rows, usage_daily ${fmt(daily)} rows, usage_model_hourly ${fmt(coarse)} rows, file ${fmt(statSync(path).size / 2 ** 20)} MiB`,
  );
}

async function time(fn, runs = 5) {
  await fn();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(runs / 2)];
}

async function reports(rows) {
  console.log(
    `\n## Reports over ${fmt(rows)} calls (median of 5 after a warm-up; raw scans: median of ${rows > 2_000_000 ? 1 : 3})`,
  );
  const path = join(dir, `report-${rows}.db`);
  bulkLoad(path, rows);
  const store = openSqliteStore({ path });
  const raw = new Database(path, { readonly: true });
  registerHistogramFunctions(raw);
  registerBucketFunctions(raw);
  const start = Date.UTC(2025, 0, 1);
  const rawScan = (query) => {
    // The same report from raw rows, what a store without rollups would do: the SQL of a raw
    // edge (a range inside one hour), widened to the whole range.
    const [part] = summarySql({ ...query, fromMs: 1, toMs: 2 });
    const params = [...part.params.slice(0, -2), query.fromMs ?? 0, query.toMs ?? 8.64e15];
    return () => raw.prepare(part.sql).all(...params);
  };
  const cases = [
    ['all time, group_by=model', { groupBy: ['model'] }],
    ['all time, group_by=provider,outcome', { groupBy: ['provider', 'outcome'] }],
    ['all time, group_by=user', { groupBy: ['user'] }],
    ['all time, group_by=project,feature', { groupBy: ['project', 'feature'] }],
    ['all time, group_by=day tz=America/New_York', { groupBy: ['day'], tz: 'America/New_York' }],
    ['all time, user=user-0, group_by=day', { groupBy: ['day'], filters: { user: 'user-0' } }],
    [
      'worst case: group_by=user,day tz=America/New_York (hourly)',
      { groupBy: ['user', 'day'], tz: 'America/New_York' },
    ],
    [
      '7 ragged days, group_by=model,day',
      {
        groupBy: ['model', 'day'],
        fromMs: start + 3 * 24 * HOUR + 1234,
        toMs: start + 10 * 24 * HOUR - 4321,
      },
    ],
  ];
  console.log(`${'report'.padEnd(60)} ${'rollups'.padStart(10)} ${'raw scan'.padStart(10)}`);
  for (const [name, query] of cases) {
    const withRollups = await time(() => store.summary(query));
    const without = await time(rawScan(query), rows > 2_000_000 ? 1 : 3);
    console.log(
      `${name.padEnd(60)} ${`${fmt(withRollups, 1)} ms`.padStart(10)} ${`${fmt(without, 0)} ms`.padStart(10)}`,
    );
  }
  const page = await time(() => store.events({ limit: 100 }));
  const first = await store.events({ limit: 1000, filters: { user: 'user-3' } });
  const deep = await time(() =>
    store.events({ limit: 100, filters: { user: 'user-3' }, cursor: first.next_cursor }),
  );
  console.log(`${'events first page (100)'.padEnd(60)} ${fmt(page, 2)} ms`);
  console.log(`${'events user=user-3, page after 1000 rows'.padEnd(60)} ${fmt(deep, 2)} ms`);
  raw.close();
  await store.close();
  if (args.keep) {
    console.log(`kept ${path}`);
    return;
  }
  rmSync(path, { force: true });
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
}

console.log(
  `# llm-meter store benchmark (node ${process.version}, SQLite ${new Database(':memory:').prepare('SELECT sqlite_version()').pluck().get()})`,
);
try {
  if (ONLY === null && !args['skip-write']) {
    await persistence();
    await hotPath();
  }
  if (ONLY === null || ONLY === 'durability') await durabilityCosts();
  if (ROWS > 0) await reports(ROWS);
  if (BIG > 0) await reports(BIG);
} finally {
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
}
