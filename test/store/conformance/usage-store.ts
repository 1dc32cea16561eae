/**
 * The UsageStore's promises (src/store/types.ts), written against the interface only, so that
 * every implementation runs the same assertions (test/store/sqlite.conformance.test.ts runs them
 * on SQLite; a PostgreSQL store runs them on its own database). What is about one database's
 * mechanics (locks, WAL, checkpoints) stays in that database's own tests.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { bucketLabel } from '../../../src/common/buckets.js';
import { type CallRecord, MAX_TOKENS } from '../../../src/record.js';
import { isInvalidQueryError } from '../../../src/store/errors.js';
import { MAX_PAGE_BYTES } from '../../../src/store/events.js';
import { MAX_COST_NANOS, MAX_DURATION_MS } from '../../../src/store/row.js';
import { MAX_TIMESERIES_BUCKETS, MAX_TIMESERIES_POINTS } from '../../../src/store/timeseries.js';
import type {
  GroupByKey,
  SummaryQuery,
  SummaryRow,
  UsageEvent,
  UsageStore,
} from '../../../src/store/types.js';
import { zonedInstant } from '../../../src/zones.js';
import { makeErrorRecord, makeRecord } from '../../helpers/records.js';

export interface UsageStoreOptions {
  now?: (() => number) | undefined;
  /** Diagnostics: every failed commit, refused or clamped record. */
  onError?: ((error: unknown) => void) | undefined;
}

export interface UsageStoreHarness {
  store: UsageStore;
  /**
   * Opens another handle on the same database, as another process would; null where there can
   * be none (a private in-memory database). The suite closes what it opens.
   */
  another: (() => Promise<UsageStore>) | null;
  /** Closes the store (it may already be closed) and whatever else the harness opened. */
  close(): Promise<void>;
}

/** Opens a new, empty database. */
export type OpenUsageStore = (options?: UsageStoreOptions) => Promise<UsageStoreHarness>;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2025, 2, 10, 0, 0, 0);

/** What a backend can do that the suite tests only where it can. */
export interface UsageStoreCapabilities {
  /** Other handles (other processes) can open the same database. */
  sharedDatabase: boolean;
}

export function describeUsageStore(
  name: string,
  open: OpenUsageStore,
  capabilities: UsageStoreCapabilities = { sharedDatabase: true },
): void {
  const harnesses: UsageStoreHarness[] = [];
  const handles: UsageStore[] = [];
  afterEach(async () => {
    for (const store of handles.splice(0)) await store.close();
    for (const harness of harnesses.splice(0)) await harness.close();
  });
  const start = async (options: UsageStoreOptions = {}) => {
    const harness = await open(options);
    harnesses.push(harness);
    return harness;
  };
  const fresh = async (options: UsageStoreOptions = {}) => (await start(options)).store;
  /** A store holding `records`, flushed. */
  const storeWith = async (records: CallRecord[], options: UsageStoreOptions = {}) => {
    const store = await fresh(options);
    for (const record of records) store.write(record);
    await store.flush();
    return store;
  };
  /** Another handle on the harness's database, closed after the test. */
  const another = async (harness: UsageStoreHarness) => {
    const store = await harness.another!();
    handles.push(store);
    return store;
  };
  /** A record whose figures are broken the way `patch` says. */
  const broken = (id: string, patch: (record: CallRecord) => void): CallRecord => {
    const record = makeRecord({ id, startMs: T0 + 14 * HOUR + 60_000 });
    patch(record);
    return record;
  };

  describe(`UsageStore conformance: ${name}`, () => {
    describe('writing', () => {
      it('stores every field of a record and reads it back as an event', async () => {
        const record = makeRecord({
          id: 'call-1',
          startMs: T0 + 1234.7,
          tags: { env: 'prod', team: 'ml' },
          content: { output: 'hi' },
        });
        const store = await storeWith([record]);
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
        const store = await storeWith([record, record]);
        store.write(record);
        await store.flush();
        expect((await store.summary({})).totals.requests).toBe(1);
        expect((await store.events({})).events).toHaveLength(1);
        expect(store.stats()).toMatchObject({ written: 3, duplicates: 2, failed: 0, invalid: 0 });
        await store.close();
      });

      it('refuses a record without an id, keeps the rest of its batch, and never throws', async () => {
        const store = await fresh();
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

      it('drops (and counts) writes after close, and answers ping false', async () => {
        const store = await fresh();
        expect(await store.ping()).toBe(true);
        await store.close();
        store.write(makeRecord());
        expect(store.stats().dropped).toBe(1);
        expect(await store.ping()).toBe(false);
      });

      const cases: Array<[string, (record: CallRecord) => void, Partial<UsageEvent>, string[]]> = [
        [
          'a token count above 2^63',
          (r) => {
            r.usage!.outputTokens = 2 ** 64;
          },
          { output_tokens: MAX_TOKENS },
          ['output_tokens'],
        ],
        [
          '1e12 reasoning tokens',
          (r) => {
            r.usage!.reasoningTokens = 1e12;
          },
          { reasoning_tokens: MAX_TOKENS },
          ['reasoning_tokens'],
        ],
        [
          'NaN and Infinity',
          (r) => {
            r.usage!.inputTokens = Number.NaN;
            r.usage!.cacheReadTokens = Number.POSITIVE_INFINITY;
          },
          { input_tokens: null, cached_input_tokens: MAX_TOKENS },
          ['input_tokens', 'cached_input_tokens'],
        ],
        [
          'negative figures',
          (r) => {
            r.usage!.outputTokens = -5;
            r.cost.totalNanos = -1;
            r.timing.timeToFirstTokenMs = -3;
          },
          { output_tokens: 0, cost_usd: 0, ttft_ms: 0 },
          ['output_tokens', 'cost_nanos', 'ttft_ms'],
        ],
        [
          'not a number at all',
          (r) => {
            (r.usage as unknown as Record<string, unknown>).inputTokens = '1200';
            (r as unknown as Record<string, unknown>).chunks = 10n ** 30n;
          },
          { input_tokens: null, chunks: 0 },
          ['input_tokens', 'chunks'],
        ],
        [
          'a cost of 1e30 nano-dollars and a year-long duration',
          (r) => {
            r.cost.totalNanos = 1e30;
            r.cost.outputNanos = 1e30;
            r.timing.durationMs = 365 * 24 * HOUR;
          },
          {
            cost_usd: MAX_COST_NANOS / 1e9,
            output_cost_usd: MAX_COST_NANOS / 1e9,
            duration_ms: MAX_DURATION_MS,
          },
          ['cost_nanos', 'output_cost_nanos', 'duration_ms'],
        ],
        [
          'a max_tokens of 1e300 sent by a client',
          (r) => {
            r.request.maxTokens = 1e300;
            r.httpStatus = 1e9;
          },
          { max_tokens: MAX_TOKENS, http_status: 999 },
          ['max_tokens', 'http_status'],
        ],
      ];

      it.each(cases)(
        '%s: stored bounded, flagged, and the batch commits',
        async (_name, patch, expected, columns) => {
          const errors: unknown[] = [];
          const store = await fresh({ onError: (error) => errors.push(error) });
          store.write(makeRecord({ id: 'before' }));
          store.write(broken('bad', patch));
          store.write(makeRecord({ id: 'after' }));
          await store.flush();
          expect(store.stats()).toMatchObject({ written: 3, clamped: 1, invalid: 0, failed: 0, pending: 0 });
          const bad = (await store.events({})).events.find((e) => e.id === 'bad')!;
          expect(bad).toMatchObject(expected);
          for (const column of columns) expect(String(errors.at(-1)), column).toContain(column);
          await store.close();
        },
      );

      it('refuses, alone, a record whose start time no report could label', async () => {
        const store = await fresh();
        store.write(makeRecord({ id: 'ok-1' }));
        store.write(broken('far-future', (r) => (r.timing.startMs = 9e15)));
        store.write(broken('before-1970', (r) => (r.timing.startMs = -1)));
        store.write(makeRecord({ id: 'ok-2' }));
        await store.flush();
        expect(store.stats()).toMatchObject({ written: 2, invalid: 2, pending: 0 });
        expect((await store.events({})).events.map((e) => e.id).sort()).toEqual(['ok-1', 'ok-2']);
        await store.close();
      });
    });

    describe('summary', () => {
      const records = [
        makeRecord({
          startMs: T0 + 10 * HOUR,
          user: 'alice',
          requestModel: 'gpt-4o',
          costNanos: 3_000_000_000,
        }),
        makeRecord({
          startMs: T0 + 11 * HOUR,
          user: 'bob',
          requestModel: 'gpt-4o',
          costNanos: 1_000_000_000,
        }),
        makeRecord({
          startMs: T0 + 12 * HOUR,
          user: 'bob',
          requestModel: 'gpt-4o-mini',
          costNanos: 500_000_000,
        }),
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
        const two = await store.summary({
          filters: { model: ['gpt-4o-mini', 'llama3'] },
          groupBy: ['model'],
        });
        expect(two.rows.map((r) => r.model)).toEqual(['gpt-4o-mini', 'llama3']);
        const none = await store.summary({ filters: { project: 'nope' } });
        expect(none).toMatchObject({
          rows: [],
          totals: { requests: 0, cost_usd: null, latency_p50_ms: null },
        });
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
          [
            'days in UTC',
            'day',
            'UTC',
            { '2025-03-09': 2, '2025-03-10': 2, '2025-11-02': 1, '2025-11-03': 2 },
          ],
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
        expect((await store.events({ fromMs: T0 + 1, toMs: T0 + 2 * HOUR })).events.map((e) => e.id)).toEqual(
          ['x2'],
        );
        await store.close();
      });

      it.each([
        ['cursor', { cursor: 'not-a-cursor' }],
        ['limit', { limit: 0 }],
        ['limit', { limit: 1001 }],
      ])('refuses a bad %s', async (field, query) => {
        const store = await fresh();
        const error = await store.events(query).catch((e: unknown) => e);
        expect(isInvalidQueryError(error) && error.field).toBe(field);
        await store.close();
      });

      it('iterates over every matching event a page at a time', async () => {
        const store = await storeWith(
          Array.from({ length: 2500 }, (_, i) => makeRecord({ startMs: T0 + i })),
        );
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
        const store = await fresh();
        await expect(store.prune(-1)).rejects.toSatisfy(isInvalidQueryError);
        await store.close();
      });
    });

    // A private in-memory database has no other handle: the suite does not register these there.
    if (capabilities.sharedDatabase)
      describe('durability across handles', () => {
        it('what flush() resolved for is visible to another handle on the database', async () => {
          const harness = await start();
          const other = await another(harness);
          for (let i = 0; i < 25; i++) harness.store.write(makeRecord({ id: `d-${i}`, startMs: T0 + i }));
          await harness.store.flush();
          const { events } = await other.events({ limit: 100 });
          expect(events.map((e) => e.id).sort()).toEqual(
            Array.from({ length: 25 }, (_, i) => `d-${i}`).sort(),
          );
          expect((await other.summary({})).totals.requests).toBe(25);
        });

        it('close() commits what is pending', async () => {
          const harness = await start();
          for (let i = 0; i < 100; i++) harness.store.write(makeRecord());
          await harness.store.close();
          const other = await another(harness);
          expect((await other.summary({})).totals.requests).toBe(100);
        });

        it('two handles writing the same calls store each once', async () => {
          const harness = await start();
          const other = await another(harness);
          const records = Array.from({ length: 50 }, (_, i) =>
            makeRecord({ id: `both-${i}`, startMs: T0 + i }),
          );
          for (const record of records) {
            harness.store.write(record);
            other.write(record);
          }
          await Promise.all([harness.store.flush(), other.flush()]);
          expect((await harness.store.summary({})).totals.requests).toBe(50);
          expect((await other.events({ limit: 1000 })).events).toHaveLength(50);
          const stats = [harness.store.stats(), other.stats()];
          expect(stats[0]!.duplicates + stats[1]!.duplicates, 'each id stored once').toBe(50);
        });
      });

    describe('report bounds', () => {
      const T0 = Date.UTC(2025, 2, 1);
      const USERS = 120;
      const pad = (i: number) => `u${String(i).padStart(3, '0')}`;
      /** User i spends (i + 1) mUSD in one call, in hour i % 48: the largest spenders are the last. */
      const spenders = () =>
        Array.from({ length: USERS }, (_, i) =>
          makeRecord({ user: pad(i), startMs: T0 + (i % 48) * HOUR + 60_000, costNanos: (i + 1) * 1e6 }),
        );
      const sumOf = (rows: readonly SummaryRow[], pick: (row: SummaryRow) => number | null) =>
        rows.reduce((sum, row) => sum + (pick(row) ?? 0), 0);

      describe('report bounds: timeseries', () => {
        it(`${USERS} users by hour: the ${20} largest series, then one series with the rest`, async () => {
          const store = await storeWith(spenders());
          const range = { fromMs: T0, toMs: T0 + 30 * DAY };
          const result = await store.timeseries({
            ...range,
            interval: 'hour',
            metric: 'cost_usd',
            groupBy: ['user'],
          });
          expect(result.series).toHaveLength(21);
          expect(result.series.slice(0, 20).map((s) => s.key.user)).toEqual(
            Array.from({ length: 20 }, (_, i) => pad(USERS - 1 - i)),
          );
          const other = result.series[20]!;
          expect(other).toMatchObject({ other: true, other_groups: USERS - 20, key: { user: null } });
          for (const s of result.series) expect(s.points).toHaveLength(30 * 24);
          // Every bucket still adds up to the ungrouped series.
          const whole = await store.timeseries({ ...range, interval: 'hour', metric: 'cost_usd' });
          whole.series[0]!.points.forEach((point, i) => {
            const stacked = result.series.reduce((sum, s) => sum + (s.points[i]!.value ?? 0), 0);
            expect(stacked, point.t).toBeCloseTo(point.value ?? 0, 9);
          });
          await store.close();
        });

        it(`never more than ${MAX_TIMESERIES_POINTS} points: many buckets leave room for fewer series`, async () => {
          const store = await storeWith(spenders());
          const result = await store.timeseries({
            fromMs: T0,
            toMs: T0 + 5_000 * HOUR,
            interval: 'hour',
            metric: 'cost_usd',
            groupBy: ['user'],
            limit: 100,
          });
          const points = result.series.reduce((n, s) => n + s.points.length, 0);
          expect(points).toBeLessThanOrEqual(MAX_TIMESERIES_POINTS);
          expect(result.series).toHaveLength(MAX_TIMESERIES_POINTS / 5_000);
          expect(result.series.at(-1)).toMatchObject({ other: true, other_groups: USERS - 19 });
          await store.close();
        });

        it(`refuses a range of more than ${MAX_TIMESERIES_BUCKETS} buckets, naming the field to change`, async () => {
          const store = await storeWith([
            makeRecord({ startMs: T0 }),
            makeRecord({ startMs: T0 + 500 * DAY }),
          ]);
          const year = { fromMs: T0, toMs: T0 + 2 * 365 * DAY };
          await expect(store.timeseries({ ...year, interval: 'hour', metric: 'requests' })).rejects.toSatisfy(
            (error) => isInvalidQueryError(error) && error.field === 'interval',
          );
          // Without `from`, the range is the data's: 500 days of hours.
          await expect(store.timeseries({ interval: 'hour', metric: 'requests' })).rejects.toSatisfy(
            (error) => isInvalidQueryError(error) && error.field === 'from',
          );
          expect(
            (await store.timeseries({ ...year, interval: 'day', metric: 'requests' })).series,
          ).toHaveLength(1);
          await expect(store.timeseries({ interval: 'day', metric: 'requests', limit: 0 })).rejects.toSatisfy(
            (error) => isInvalidQueryError(error) && error.field === 'limit',
          );
          await store.close();
        });
      });

      describe('report bounds: summary', () => {
        it('shows the largest groups up to `limit` and adds up the rest in one row', async () => {
          const store = await storeWith(spenders());
          const all = await store.summary({ groupBy: ['user'] });
          expect(all.rows).toHaveLength(USERS);
          expect(all.rows.some((row) => row.other)).toBe(false);

          const top = await store.summary({ groupBy: ['user'], limit: 10 });
          expect(top.rows).toHaveLength(11);
          expect(top.rows.slice(0, 10).map((row) => row.user)).toEqual(
            all.rows.slice(0, 10).map((row) => row.user),
          );
          const other = top.rows[10]!;
          expect(other).toMatchObject({
            other: true,
            other_groups: USERS - 10,
            user: null,
            requests: USERS - 10,
          });
          expect(other.cost_usd).toBeCloseTo(
            sumOf(all.rows.slice(10), (row) => row.cost_usd),
            9,
          );
          expect(other.latency_p50_ms, 'percentiles of the rest').not.toBeNull();
          expect(top.totals).toEqual(all.totals);
          await store.close();
        });

        it('with time buckets: one `other` row per bucket, and every bucket adds up', async () => {
          const store = await storeWith(spenders());
          const { rows, totals } = await store.summary({ groupBy: ['day', 'user'], limit: 5 });
          const byDay = (await store.summary({ groupBy: ['day'] })).rows;
          for (const day of byDay) {
            const inDay = rows.filter((row) => row.day === day.day);
            expect(inDay.at(-1), day.day!).toMatchObject({ other: true });
            expect(sumOf(inDay, (row) => row.requests)).toBe(day.requests);
            expect(sumOf(inDay, (row) => row.cost_usd)).toBeCloseTo(day.cost_usd!, 9);
          }
          expect(new Set(rows.filter((row) => !row.other).map((row) => row.user)).size).toBe(5);
          expect(totals.requests).toBe(USERS);
          await store.close();
        });

        it('never more than 10 000 rows: many buckets leave room for fewer groups', async () => {
          const records: CallRecord[] = [];
          for (let hour = 0; hour < 100; hour++) {
            for (let i = 0; i < USERS; i++) {
              records.push(
                makeRecord({ user: pad(i), startMs: T0 + hour * HOUR + i, costNanos: (i + 1) * 1e6 }),
              );
            }
          }
          const store = await storeWith(records);
          const { rows, totals } = await store.summary({ groupBy: ['hour', 'user'] });
          expect(rows.length).toBeLessThanOrEqual(10_000);
          expect(rows.filter((row) => row.other)).toHaveLength(100);
          expect(new Set(rows.filter((row) => !row.other).map((row) => row.user)).size).toBe(99);
          expect(sumOf(rows, (row) => row.requests)).toBe(100 * USERS);
          expect(totals.requests).toBe(100 * USERS);
          await store.close();
        });

        it('refuses more than 10 000 time buckets, naming group_by', async () => {
          const records = Array.from({ length: 10_001 }, (_, i) => makeRecord({ startMs: T0 + i * HOUR }));
          const store = await storeWith(records);
          await expect(store.summary({ groupBy: ['hour'] })).rejects.toSatisfy(
            (error) => isInvalidQueryError(error) && error.field === 'group_by',
          );
          expect((await store.summary({ groupBy: ['day'] })).rows.length).toBeGreaterThan(400);
          await expect(store.summary({ limit: 1001 })).rejects.toSatisfy(
            (error) => isInvalidQueryError(error) && error.field === 'limit',
          );
          await store.close();
        });
      });

      describe('report bounds: events', () => {
        it('a page stops early past its byte budget of captured content; the cursor goes on from there', async () => {
          const big = 'x'.repeat(7 * 1024 * 1024);
          const store = await storeWith(
            Array.from({ length: 5 }, (_, i) =>
              makeRecord({ id: `big-${i}`, startMs: T0 + i, content: { output: big } }),
            ),
          );
          const seen: string[] = [];
          let cursor: string | undefined;
          for (let pages = 0; pages < 10; pages++) {
            const page = await store.events({ limit: 1000, cursor });
            expect(page.events.length).toBeGreaterThan(0);
            const bytes = page.events.reduce((n, e) => n + JSON.stringify(e.content).length, 0);
            expect(bytes, 'one page').toBeLessThanOrEqual(MAX_PAGE_BYTES);
            seen.push(...page.events.map((e) => e.id));
            cursor = page.next_cursor ?? undefined;
            if (!cursor) break;
          }
          expect(seen).toEqual(['big-4', 'big-3', 'big-2', 'big-1', 'big-0']);
          let exported = 0;
          for await (const _ of store.eventsIterator({})) exported++;
          expect(exported).toBe(5);
          await store.close();
        });
      });
    });
  });
}
