import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketLabel } from '../../src/common/buckets.js';
import type { CallRecord } from '../../src/record.js';
import {
  DURABILITIES,
  type Durability,
  type GroupByKey,
  isInvalidQueryError,
  openSqliteStore,
  StoreError,
  type SummaryQuery,
  type SummaryRow,
  type UsageStore,
} from '../../src/store/index.js';
import { zonedInstant } from '../../src/zones.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeErrorRecord, makeRecord } from '../helpers/records.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2025, 2, 10, 0, 0, 0);
const newDb = useTempDb();
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function storeWith(
  records: CallRecord[],
  options: { now?: () => number; path?: string; durability?: Durability } = {},
): Promise<UsageStore> {
  const store = openSqliteStore({ path: ':memory:', ...options });
  for (const record of records) store.write(record);
  await store.flush();
  return store;
}

function count(path: string, sql = 'SELECT count(*) FROM usage'): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
}

describe.each(DURABILITIES)('writing (%s)', (durability) => {
  it('stores every field of a record and reads it back as an event', async () => {
    const record = makeRecord({
      id: 'call-1',
      startMs: T0 + 1234.7,
      tags: { env: 'prod', team: 'ml' },
      content: { output: 'hi' },
    });
    const store = await storeWith([record], { path: newDb(), durability });
    const [event] = (await store.events({})).events;
    const cases: Array<[keyof NonNullable<typeof event>, unknown]> = [
      ['id', 'call-1'],
      ['time', new Date(T0 + 1234).toISOString()],
      ['end_time', new Date(T0 + 1234 + 1200).toISOString()],
      ['trace_id', record.traceId],
      ['span_id', record.spanId],
      ['provider', 'openai'],
      ['operation', 'chat'],
      ['model', 'gpt-4o-mini'],
      ['request_model', 'gpt-4o-mini'],
      ['response_model', 'gpt-4o-mini-2024-07-18'],
      ['response_id', record.responseId],
      ['server_address', 'api.openai.com'],
      ['server_port', 443],
      ['user', 'alice'],
      ['project', 'support'],
      ['feature', 'triage'],
      ['tags', { env: 'prod', team: 'ml' }],
      ['api_key_hash', 'k_3f9a1c'],
      ['stream', true],
      ['max_tokens', 1024],
      ['temperature', 0.2],
      ['tool_count', 2],
      ['outcome', 'ok'],
      ['error_type', null],
      ['http_status', 200],
      ['retryable', null],
      ['finish_reasons', ['stop']],
      ['input_tokens', 1200],
      ['cached_input_tokens', 400],
      ['cache_write_input_tokens', 0],
      ['output_tokens', 350],
      ['reasoning_tokens', 0],
      ['tokens_source', 'provider'],
      ['chunks', 42],
      ['cost_usd', 0.004125],
      ['cost_source', 'catalog'],
      ['priced_as', 'gpt-4o-mini'],
      ['projected_max_cost_usd', 0.0008],
      ['context_window', 128000],
      ['context_exceeded', false],
      ['duration_ms', 1200],
      ['ttft_ms', 250],
      ['queue_ms', 80],
      ['queue_source', 'estimated'],
      ['prefill_ms', 120],
      ['prefill_source', 'estimated'],
      ['generation_ms', 945],
      ['generation_source', 'observed'],
      ['server_processing_ms', 1050],
      ['content', { output: 'hi' }],
    ];
    for (const [field, expected] of cases) expect(event?.[field], field).toEqual(expected);
    await store.close();
  });

  it('stores a record written twice once, and counts it once in the rollups', async () => {
    const record = makeRecord();
    const store = await storeWith([record, record], { path: newDb(), durability });
    store.write(record);
    await store.flush();
    expect((await store.summary({})).totals.requests).toBe(1);
    expect((await store.events({})).events).toHaveLength(1);
    expect(store.stats()).toMatchObject({ written: 3, duplicates: 2, failed: 0, invalid: 0 });
    await store.close();
  });

  it('refuses a record without an id, keeps the rest of its batch, and never throws', async () => {
    const store = openSqliteStore({ path: newDb(), durability });
    const errors: unknown[] = [];
    store.write(makeRecord({ id: 'good-1' }));
    store.write({ ...makeRecord(), id: '' });
    expect(() => store.write(null as unknown as CallRecord)).not.toThrow();
    store.write(makeRecord({ id: 'good-2' }));
    await store.flush();
    expect((await store.events({})).events.map((e) => e.id).sort()).toEqual(['good-1', 'good-2']);
    expect(store.stats()).toMatchObject({ written: 2, invalid: 2, pending: 0 });
    expect(store.stats().lastError?.code).toBeTruthy();
    expect(errors).toEqual([]);
    await store.close();
  });

  it('drops the oldest records beyond maxPending and counts them', async () => {
    const path = newDb();
    const store = openSqliteStore({ durability, path, busyTimeoutMs: 5, maxPending: 5 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 8; i++) store.write(makeRecord({ id: `o-${i}` }));
    await turn();
    expect(store.stats()).toMatchObject({ dropped: 3, pending: 5 });
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    const ids = (await store.events({})).events.map((e) => e.id).sort();
    expect(ids).toEqual(['o-3', 'o-4', 'o-5', 'o-6', 'o-7']);
    await store.close();
  });

  it('drops (and counts) writes after close, and answers ping false', async () => {
    const store = openSqliteStore({ path: newDb(), durability });
    expect(await store.ping()).toBe(true);
    await store.close();
    store.write(makeRecord());
    expect(store.stats().dropped).toBe(1);
    expect(await store.ping()).toBe(false);
  });

  it("never checkpoints in the writer's commits (no fsync on the caller's event loop)", async () => {
    const path = newDb();
    const store = openSqliteStore({ durability, path, checkpointIntervalMs: 600_000 });
    const before = statSync(path).size;
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 300; i++) store.write(makeRecord());
      await store.flush();
    }
    expect(statSync(`${path}-wal`).size, 'past the 1000-page autocheckpoint').toBeGreaterThan(1000 * 4096);
    expect(statSync(path).size, 'commits only appended to the WAL').toBe(before);
    await store.close();
    expect(count(path)).toBe(6000);
  });

  it('checkpoints the WAL from a worker thread', async () => {
    const path = newDb();
    const store = openSqliteStore({ durability, path, checkpointIntervalMs: 10 });
    const before = statSync(path).size;
    for (let i = 0; i < 2000; i++) store.write(makeRecord());
    await store.flush();
    for (let i = 0; i < 500 && statSync(path).size === before; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(statSync(path).size, 'the writer thread copied pages into the file').toBeGreaterThan(before);
    await store.close();
  });

  it('close() commits what is pending', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    for (let i = 0; i < 100; i++) store.write(makeRecord());
    await store.close();
    expect(count(path)).toBe(100);
  });
});

describe("writing on the caller's event loop ('commit'; the writer thread's own: store-writer.test.ts)", () => {
  it('commits a record before the next turn of the event loop, without flush', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability: 'commit' });
    store.write(makeRecord());
    store.write(makeRecord());
    await Promise.resolve();
    expect(count(path), 'rows visible to another connection').toBe(2);
    await store.close();
  });

  it('keeps records while the database is locked, counts the failure, and commits them later', async () => {
    const path = newDb();
    const store = openSqliteStore({ durability: 'commit', path, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (const id of ['a', 'b', 'c']) store.write(makeRecord({ id }));
    await turn();
    expect(store.stats()).toMatchObject({ failed: 1, pending: 3, written: 0 });
    expect(store.stats().lastError?.code).toMatch(/^SQLITE_BUSY/);
    store.write(makeRecord({ id: 'd' }));
    await turn();
    expect(store.stats().failed, 'no new attempt before the backoff').toBe(1);
    await expect(store.flush()).rejects.toBeInstanceOf(StoreError);
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ failed: 2, pending: 0, written: 4 });
    expect(count(path)).toBe(4);
    await store.close();
  });

  it('never waits the full busy timeout on the event loop: commits wait briefly and retry', async () => {
    const path = newDb();
    // Ten minutes: a commit or a flush during the outage that waited it out would hang the test.
    const store = openSqliteStore({ durability: 'commit', path, busyTimeoutMs: 600_000 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    store.write(makeRecord({ id: 'locked-1' }));
    await turn();
    expect(store.stats()).toMatchObject({ failed: 1, pending: 1, written: 0 });
    // The outage is known: flush probes briefly instead of waiting the full timeout.
    await expect(store.flush()).rejects.toBeInstanceOf(StoreError);
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ pending: 0, written: 1 });
    await store.close();
  });

  it("':memory:' commits on the event loop whatever the durability asked for", async () => {
    const store = openSqliteStore({ path: ':memory:', durability: 'journal' });
    store.write(makeRecord());
    await Promise.resolve();
    expect(store.stats()).toMatchObject({ written: 1, pending: 0 });
    await store.close();
  });
});

describe('summary', () => {
  const records = [
    makeRecord({ startMs: T0 + 10 * HOUR, user: 'alice', requestModel: 'gpt-4o', costNanos: 3_000_000_000 }),
    makeRecord({ startMs: T0 + 11 * HOUR, user: 'bob', requestModel: 'gpt-4o', costNanos: 1_000_000_000 }),
    makeRecord({ startMs: T0 + 12 * HOUR, user: 'bob', requestModel: 'gpt-4o-mini', costNanos: 500_000_000 }),
    makeRecord({
      startMs: T0 + 13 * HOUR,
      user: undefined,
      provider: 'ollama',
      requestModel: 'llama3',
      costNanos: null,
    }),
    makeErrorRecord({ startMs: T0 + 14 * HOUR, user: 'alice', requestModel: 'gpt-4o' }),
  ];

  it.each<[string, GroupByKey[], Array<Partial<SummaryRow>>]>([
    [
      'model',
      ['model'],
      [
        { model: 'gpt-4o', requests: 3, errors: 1, cost_usd: 4, unpriced_requests: 0 },
        { model: 'gpt-4o-mini', requests: 1, cost_usd: 0.5 },
        { model: 'llama3', requests: 1, cost_usd: null, unpriced_requests: 1 },
      ],
    ],
    [
      'user (a missing user is null)',
      ['user'],
      [
        { user: 'alice', requests: 2, cost_usd: 3 },
        { user: 'bob', requests: 2, cost_usd: 1.5 },
        { user: null, requests: 1, cost_usd: null },
      ],
    ],
    [
      'provider and outcome',
      ['provider', 'outcome'],
      [
        { provider: 'openai', outcome: 'ok', requests: 3 },
        { provider: 'openai', outcome: 'error', requests: 1, errors: 1 },
        { provider: 'ollama', outcome: 'ok', requests: 1 },
      ],
    ],
    ['day', ['day'], [{ day: '2025-03-10', requests: 5, cost_usd: 4.5, unpriced_requests: 1 }]],
  ])('groups by %s', async (_name, groupBy, expected) => {
    const store = await storeWith(records);
    const { rows, totals } = await store.summary({ groupBy });
    expect(rows).toHaveLength(expected.length);
    for (const [i, row] of expected.entries()) expect(rows[i], `row ${i}`).toMatchObject(row);
    expect(totals).toMatchObject({ requests: 5, errors: 1, cost_usd: 4.5, unpriced_requests: 1 });
    expect(totals.input_tokens).toBe(4 * 1200);
    await store.close();
  });

  it('filters, with several values for one dimension', async () => {
    const store = await storeWith(records);
    const one = await store.summary({ filters: { user: 'bob' } });
    expect(one.totals).toMatchObject({ requests: 2, cost_usd: 1.5 });
    const two = await store.summary({ filters: { model: ['gpt-4o-mini', 'llama3'] }, groupBy: ['model'] });
    expect(two.rows.map((r) => r.model)).toEqual(['gpt-4o-mini', 'llama3']);
    const none = await store.summary({ filters: { project: 'nope' } });
    expect(none).toMatchObject({ rows: [], totals: { requests: 0, cost_usd: null, latency_p50_ms: null } });
    await store.close();
  });

  it('answers ranges that do not start or end on an hour exactly (raw edges + rollups)', async () => {
    const times = [
      9 * HOUR + 59 * 60_000,
      10 * HOUR,
      10 * HOUR + 1,
      12 * HOUR + 30 * 60_000,
      13 * HOUR - 1,
      13 * HOUR,
    ];
    const store = await storeWith(times.map((t) => makeRecord({ startMs: T0 + t })));
    const cases: Array<[string, number, number, number]> = [
      ['ragged both ends', T0 + 9 * HOUR + 59 * 60_000 + 1, T0 + 13 * HOUR - 1, 3],
      ['ragged start, aligned end', T0 + 9 * HOUR + 59 * 60_000, T0 + 13 * HOUR, 5],
      ['aligned', T0 + 10 * HOUR, T0 + 13 * HOUR, 4],
      ['inside one hour', T0 + 10 * HOUR + 1, T0 + 10 * HOUR + 2, 1],
      ['across one boundary, no whole hour', T0 + 9 * HOUR + 30 * 60_000, T0 + 10 * HOUR + 1, 2],
      ['empty', T0 + 10 * HOUR + 2, T0 + 12 * HOUR, 0],
    ];
    for (const [name, fromMs, toMs, expected] of cases) {
      expect((await store.summary({ fromMs, toMs })).totals.requests, name).toBe(expected);
    }
    await store.close();
  });

  it('reports latency and TTFT percentiles within 4.5%', async () => {
    const durations = Array.from({ length: 200 }, (_, i) => 100 + i * 37);
    const store = await storeWith(durations.map((d) => makeRecord({ durationMs: d, ttftMs: d / 4 })));
    const { totals } = await store.summary({});
    const exact = (p: number) => durations[Math.ceil(p * durations.length) - 1]!;
    expect(Math.abs(totals.latency_p50_ms! / exact(0.5) - 1)).toBeLessThan(0.045);
    expect(Math.abs(totals.latency_p95_ms! / exact(0.95) - 1)).toBeLessThan(0.045);
    expect(Math.abs(totals.ttft_p95_ms! / (exact(0.95) / 4) - 1)).toBeLessThan(0.045);
    await store.close();
  });

  describe('calendar buckets in a time zone', () => {
    const at = (iso: string) => makeRecord({ startMs: Date.parse(iso) });
    const dstRecords = [
      at('2025-03-09T04:30:00Z'), // 23:30 EST, Mar 8
      at('2025-03-09T05:30:00Z'), // 00:30 EST, Mar 9 (a 23-hour day)
      at('2025-03-10T03:30:00Z'), // 23:30 EDT, Mar 9
      at('2025-03-10T04:30:00Z'), // 00:30 EDT, Mar 10
      at('2025-11-02T04:30:00Z'), // 00:30 EDT, Nov 2 (a 25-hour day)
      at('2025-11-03T04:30:00Z'), // 23:30 EST, Nov 2
      at('2025-11-03T05:30:00Z'), // 00:30 EST, Nov 3
    ];

    it.each<[string, GroupByKey, string, Record<string, number>]>([
      [
        'days across DST in New York',
        'day',
        'America/New_York',
        { '2025-03-08': 1, '2025-03-09': 2, '2025-03-10': 1, '2025-11-02': 2, '2025-11-03': 1 },
      ],
      ['days in UTC', 'day', 'UTC', { '2025-03-09': 2, '2025-03-10': 2, '2025-11-02': 1, '2025-11-03': 2 }],
      [
        'ISO weeks start on Monday',
        'week',
        'America/New_York',
        { '2025-03-03': 3, '2025-03-10': 1, '2025-10-27': 2, '2025-11-03': 1 },
      ],
      ['months', 'month', 'America/New_York', { '2025-03': 4, '2025-11': 3 }],
      ['months in Tokyo', 'month', 'Asia/Tokyo', { '2025-03': 4, '2025-11': 3 }],
    ])('%s', async (_name, unit, tz, expected) => {
      const store = await storeWith(dstRecords);
      const { rows } = await store.summary({ groupBy: [unit], tz });
      expect(Object.fromEntries(rows.map((r) => [r[unit], r.requests]))).toEqual(expected);
      await store.close();
    });

    it('timeseries gives local midnights as instants and fills empty days with 0', async () => {
      const store = await storeWith(dstRecords.slice(0, 4));
      const tz = 'America/New_York';
      const result = await store.timeseries({
        interval: 'day',
        metric: 'requests',
        tz,
        fromMs: zonedInstant(2025, 3, 7, tz),
        toMs: zonedInstant(2025, 3, 12, tz),
      });
      expect(result.series).toHaveLength(1);
      expect(result.series[0]!.points).toEqual([
        { t: '2025-03-07T05:00:00.000Z', value: 0 },
        { t: '2025-03-08T05:00:00.000Z', value: 1 },
        { t: '2025-03-09T05:00:00.000Z', value: 2 },
        { t: '2025-03-10T04:00:00.000Z', value: 1 },
        { t: '2025-03-11T04:00:00.000Z', value: 0 },
      ]);
      await store.close();
    });
  });

  it('timeseries: one series per group, largest first, hourly buckets filled', async () => {
    const store = await storeWith([
      makeRecord({ startMs: T0 + 1 * HOUR, requestModel: 'a', costNanos: 1e9 }),
      makeRecord({ startMs: T0 + 3 * HOUR, requestModel: 'b', costNanos: 5e9 }),
      makeRecord({ startMs: T0 + 3 * HOUR + 5, requestModel: 'a', costNanos: null }),
    ]);
    const result = await store.timeseries({ interval: 'hour', metric: 'cost_usd', groupBy: ['model'] });
    expect(result.series.map((s) => s.key)).toEqual([{ model: 'b' }, { model: 'a' }]);
    expect(result.series[1]!.points).toEqual([
      { t: new Date(T0 + HOUR).toISOString(), value: 1 },
      { t: new Date(T0 + 2 * HOUR).toISOString(), value: 0 },
      { t: new Date(T0 + 3 * HOUR).toISOString(), value: null },
    ]);
    await store.close();
  });

  it('matches a naive computation over the raw records (property)', async () => {
    const dims = {
      model: ['gpt-4o', 'gpt-4o-mini', 'claude'],
      user: ['alice', 'bob', undefined],
      project: ['p1', 'p2'],
    } as const;
    const recordArb = fc.record({
      offset: fc.integer({ min: 0, max: 5 * DAY }),
      model: fc.constantFrom(...dims.model),
      user: fc.constantFrom(...dims.user),
      project: fc.constantFrom(...dims.project),
      error: fc.boolean(),
      cost: fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: null }),
      duration: fc.integer({ min: 1, max: 60_000 }),
      tokens: fc.integer({ min: 0, max: 100_000 }),
    });
    const queryArb = fc.record({
      from: fc.option(fc.integer({ min: 0, max: 5 * DAY }), { nil: undefined }),
      span: fc.option(fc.integer({ min: 1, max: 5 * DAY }), { nil: undefined }),
      groupBy: fc.subarray<GroupByKey>(['model', 'user', 'project', 'hour', 'day', 'week', 'month'], {
        maxLength: 2,
      }),
      tz: fc.constantFrom('UTC', 'America/New_York', 'Asia/Kolkata'),
      filterUser: fc.option(fc.constantFrom('alice', 'bob'), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(recordArb, { maxLength: 40 }), queryArb, async (specs, q) => {
        const records = specs.map((s) =>
          s.error
            ? makeErrorRecord({
                startMs: T0 + s.offset,
                requestModel: s.model,
                user: s.user,
                project: s.project,
                durationMs: s.duration,
              })
            : makeRecord({
                startMs: T0 + s.offset,
                requestModel: s.model,
                user: s.user,
                project: s.project,
                costNanos: s.cost,
                durationMs: s.duration,
                usage: { inputTokens: s.tokens },
              }),
        );
        const store = await storeWith(records);
        const query: SummaryQuery = {
          fromMs: q.from === undefined ? undefined : T0 + q.from,
          toMs: q.from === undefined || q.span === undefined ? undefined : T0 + q.from + q.span,
          groupBy: q.groupBy,
          tz: q.tz,
          filters: q.filterUser ? { user: q.filterUser } : undefined,
        };
        const { rows, totals } = await store.summary(query);
        await store.close();

        const expected = new Map<
          string,
          { requests: number; errors: number; tokens: number; cost: number; unpriced: number }
        >();
        for (const r of records) {
          const t = Math.floor(r.timing.startMs);
          if (query.fromMs !== undefined && t < query.fromMs) continue;
          if (query.toMs !== undefined && t >= query.toMs) continue;
          if (q.filterUser && r.attribution.user !== q.filterUser) continue;
          const key = q.groupBy.map((k) => {
            if (k === 'model') return r.requestModel;
            if (k === 'user') return r.attribution.user ?? null;
            if (k === 'project') return r.attribution.project;
            return bucketLabel(Math.floor(t / HOUR) * HOUR, k as 'hour', q.tz);
          });
          const id = JSON.stringify(key);
          const e = expected.get(id) ?? { requests: 0, errors: 0, tokens: 0, cost: 0, unpriced: 0 };
          e.requests++;
          if (r.outcome === 'error') e.errors++;
          e.tokens += r.usage?.inputTokens ?? 0;
          if (r.cost.totalNanos === null) e.unpriced++;
          else e.cost += r.cost.totalNanos;
          expected.set(id, e);
        }
        const actual = new Map(
          rows.map((row) => [
            JSON.stringify(q.groupBy.map((k) => row[k])),
            {
              requests: row.requests,
              errors: row.errors,
              tokens: row.input_tokens,
              cost: Math.round((row.cost_usd ?? 0) * 1e9),
              unpriced: row.unpriced_requests,
            },
          ]),
        );
        expect(actual).toEqual(expected);
        expect(totals.requests).toBe([...expected.values()].reduce((n, e) => n + e.requests, 0));
      }),
      { numRuns: 60 },
    );
  });
});

describe('events', () => {
  it('pages newest first, each row exactly once, with many calls at the same millisecond', async () => {
    const records = Array.from({ length: 250 }, (_, i) =>
      makeRecord({ id: `e-${i}`, startMs: T0 + Math.floor(i / 50) }),
    );
    const store = await storeWith(records);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.events({ limit: 33, cursor });
      seen.push(...page.events.map((e) => e.id));
      cursor = page.next_cursor ?? undefined;
      // A newer call arriving meanwhile does not shift the pages.
      store.write(makeRecord({ startMs: T0 + DAY }));
      await store.flush();
    } while (cursor);
    expect(seen).toHaveLength(250);
    expect(new Set(seen).size).toBe(250);
    const times = seen.map((id) => Math.floor(Number(id.slice(2)) / 50));
    expect(times, 'newest first').toEqual([...times].sort((a, b) => b - a));
    await store.close();
  });

  it('filters by dimension and time', async () => {
    const store = await storeWith([
      makeRecord({ id: 'x1', startMs: T0, user: 'alice' }),
      makeRecord({ id: 'x2', startMs: T0 + HOUR, user: 'bob' }),
      makeRecord({ id: 'x3', startMs: T0 + 2 * HOUR, user: 'alice' }),
    ]);
    expect((await store.events({ filters: { user: 'alice' } })).events.map((e) => e.id)).toEqual([
      'x3',
      'x1',
    ]);
    expect((await store.events({ fromMs: T0 + 1, toMs: T0 + 2 * HOUR })).events.map((e) => e.id)).toEqual([
      'x2',
    ]);
    await store.close();
  });

  it.each([
    ['cursor', { cursor: 'not-a-cursor' }],
    ['limit', { limit: 0 }],
    ['limit', { limit: 1001 }],
  ])('refuses a bad %s', async (field, query) => {
    const store = openSqliteStore({ path: ':memory:' });
    const error = await store.events(query).catch((e: unknown) => e);
    expect(isInvalidQueryError(error) && error.field).toBe(field);
    await store.close();
  });

  it('iterates over every matching event a page at a time', async () => {
    const store = await storeWith(Array.from({ length: 2500 }, (_, i) => makeRecord({ startMs: T0 + i })));
    let n = 0;
    let previous = Number.POSITIVE_INFINITY;
    for await (const event of store.eventsIterator({})) {
      const t = Date.parse(event.time);
      expect(t).toBeLessThanOrEqual(previous);
      previous = t;
      n++;
    }
    expect(n).toBe(2500);
    await store.close();
  });
});

describe('prune', () => {
  it('deletes old raw rows, keeps their rollups, and summaries still count them', async () => {
    const now = T0 + 100 * DAY;
    const old = [makeRecord({ startMs: T0 + 10 * 60_000 }), makeErrorRecord({ startMs: T0 + DAY })];
    const recent = [makeRecord({ startMs: now - HOUR })];
    const store = await storeWith([...old, ...recent], { now: () => now });
    const before = await store.summary({ groupBy: ['day'] });
    expect(await store.prune(90 * DAY)).toEqual({ deleted: 2, cutoffMs: now - 90 * DAY });
    expect((await store.events({})).events).toHaveLength(1);
    expect(await store.summary({ groupBy: ['day'] })).toEqual(before);
    // Raw rows of a pruned hour are gone: a range starting inside it is read at hour granularity.
    const inside = await store.summary({ fromMs: T0 + 20 * 60_000, toMs: T0 + 2 * DAY });
    expect(inside.totals.requests).toBe(2);
    expect(await store.prune(90 * DAY)).toMatchObject({ deleted: 0 });
    await store.close();
  });

  it('refuses a negative age', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    await expect(store.prune(-1)).rejects.toSatisfy(isInvalidQueryError);
    await store.close();
  });
});
