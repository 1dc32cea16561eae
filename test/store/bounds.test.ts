/**
 * The SQLite store's own defence against absurd figures (src/store/row.ts, rollup.ts, sqlite.ts,
 * summary.ts): every number it writes is bounded, one record never holds back the others, and
 * no sum a report takes can overflow, whatever an older version left on disk. How one absurd
 * record is stored and read back, on any store, is in test/store/conformance/usage-store.ts.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { type CallRecord, MAX_TOKENS } from '../../src/record.js';
import { DURABILITIES, openSqliteStore, StoreError } from '../../src/store/index.js';
import { MAX_SUM } from '../../src/store/rollup.js';
import { USAGE_COLUMNS } from '../../src/store/row.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
/** Every usage column, for copying a row with raw SQL. */
const COLUMNS = [
  'id',
  'time_ms',
  'end_ms',
  ...USAGE_COLUMNS.filter((c) => !['id', 'time_ms', 'end_ms'].includes(c)),
].join(', ');
const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 2, 10, 14, 0, 0);

function query<T>(path: string, sql: string): T {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as T;
  } finally {
    db.close();
  }
}

/** A record whose figures are broken the way `patch` says. */
function _broken(id: string, patch: (record: CallRecord) => void): CallRecord {
  const record = makeRecord({ id, startMs: T0 + 60_000 });
  patch(record);
  return record;
}

describe.each(DURABILITIES)('one absurd record (%s)', (durability) => {
  it('two 9e18-token calls in one rollup group: every call is stored, the two clamped and counted', async () => {
    const path = newDb();
    const errors: unknown[] = [];
    const store = openSqliteStore({ durability, path, onError: (error) => errors.push(error) });
    for (let i = 0; i < 8; i++) {
      store.write(
        makeRecord({ id: `r-${i}`, startMs: T0 + i, usage: i === 2 || i === 5 ? { inputTokens: 9e18 } : {} }),
      );
    }
    await store.flush();
    expect(store.stats()).toMatchObject({ written: 8, clamped: 2, invalid: 0, failed: 0, pending: 0 });
    expect(String(errors.at(-1))).toMatch(/clamped \(input_tokens\)/);
    const { totals } = await store.summary({});
    expect(totals.input_tokens).toBe(6 * 1200 + 2 * MAX_TOKENS);
    await store.close();
    expect(query(path, 'SELECT count(*) FROM usage'), 'every call on disk').toBe(8);
  });

  it('a statement that fails for one record (here a rollup upsert) discards that record alone', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    store.write(makeRecord({ id: 'warm-up' }));
    await store.flush();
    // Stands for any per-record failure clamping cannot foresee: a trigger refuses one group.
    const other = new Database(path);
    other.exec(
      "CREATE TRIGGER poison BEFORE INSERT ON usage_hourly WHEN NEW.user = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    );
    other.close();
    for (let i = 0; i < 8; i++) store.write(makeRecord({ id: `p-${i}`, user: i === 3 ? 'poison' : 'alice' }));
    await store.flush();
    expect(store.stats()).toMatchObject({ written: 8, invalid: 1, pending: 0 });
    expect(store.stats().lastError?.message).toMatch(/poisoned/);
    // The refused record left nothing behind: no raw row, nothing in any rollup.
    expect(query(path, "SELECT count(*) FROM usage WHERE id = 'p-3'")).toBe(0);
    expect(query(path, 'SELECT count(*) FROM usage_model_hourly WHERE requests > 0')).toBeGreaterThan(0);
    expect(query(path, 'SELECT sum(requests) FROM usage_model_hourly')).toBe(8);
    expect(query(path, 'SELECT sum(requests) FROM usage_daily')).toBe(8);
    // Later batches are not held back either.
    store.write(makeRecord({ id: 'later' }));
    await store.flush();
    expect(query(path, 'SELECT count(*) FROM usage')).toBe(9);
    await store.close();
  });

  it('close() counts and reports the records it has to drop', async () => {
    const path = newDb();
    const errors: unknown[] = [];
    const store = openSqliteStore({
      durability,
      path,
      busyTimeoutMs: 20,
      onError: (error) => errors.push(error),
    });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (const id of ['a', 'b', 'c']) store.write(makeRecord({ id }));
    await expect(store.flush()).rejects.toBeInstanceOf(StoreError);
    await expect(store.close()).rejects.toBeInstanceOf(StoreError);
    other.exec('ROLLBACK');
    other.close();
    expect(store.stats()).toMatchObject({ dropped: 3, pending: 0 });
    expect(String(errors.at(-1))).toMatch(/Dropped 3 usage records at close/);
  });
});

describe.each(DURABILITIES)('sums never overflow (%s)', (durability) => {
  it('a rollup group already near 2^63 saturates instead of refusing every later commit', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    store.write(makeRecord({ id: 'first', startMs: T0 }));
    await store.flush();
    const other = new Database(path);
    other.exec(
      'UPDATE usage_hourly SET input_tokens = 9200000000000000000, cost_nanos = 9200000000000000000',
    );
    other.close();
    store.write(makeRecord({ id: 'second', startMs: T0 + 1 }));
    await store.flush();
    expect(store.stats()).toMatchObject({ written: 2, invalid: 0, failed: 0, pending: 0 });
    expect(query(path, 'SELECT input_tokens FROM usage_hourly')).toBe(MAX_SUM);
    await store.close();
  });

  it('summaries and timeseries answer over rows of 6e18 tokens left by an older version', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    store.write(makeRecord({ id: 'template', startMs: T0 }));
    await store.flush();
    const other = new Database(path);
    // Raw rows (read for ranges that start inside an hour) and rollup rows (whole hours).
    const copy = (id: string, at: number) =>
      `INSERT INTO usage SELECT NULL, '${id}', ${at}, ${at} + 1200, ${'trace_id, span_id, provider, operation, model, request_model, response_model, response_id, server_address, server_port, user, project, feature, tags, api_key_hash, stream, max_tokens, temperature, tool_count, outcome, error_type, error_code, http_status, retryable, retry_after_ms, finish_reasons'}, 6000000000000000000, cached_input_tokens, cache_write_input_tokens, 6000000000000000000, reasoning_tokens, tokens_estimated, tool_calls, chunks, 6000000000000000000, ${'input_cost_nanos, cache_read_cost_nanos, cache_write_cost_nanos, output_cost_nanos, cost_source, priced_as, input_tokens_estimate, projected_max_cost_nanos, context_window, context_exceeded, duration_ms, headers_ms, ttft_ms, queue_ms, queue_source, prefill_ms, prefill_source, generation_ms, generation_source, output_tokens_per_second, server_processing_ms, rate_limit, content, tool_rounds, invalid_tool_calls'} FROM usage WHERE id = 'template'`;
    other.exec(copy('old-1', T0 + 30 * 60_000));
    other.exec(copy('old-2', T0 + 31 * 60_000));
    for (const hour of [2, 3]) {
      other.exec(
        `INSERT INTO usage_hourly SELECT hour_ms + ${hour * HOUR}, model, provider, user, project, feature, operation, outcome, requests, errors, 6000000000000000000, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, 6000000000000000000, unpriced_requests, duration_ms_sum, latency_hist, ttft_hist FROM usage_hourly`,
      );
    }
    other.close();
    const raw = await store.summary({ fromMs: T0 + 60_000, toMs: T0 + 50 * 60_000, groupBy: ['model'] });
    expect(raw.totals.input_tokens).toBe(1.2e19);
    expect(raw.rows[0]!.output_tokens).toBe(1.2e19);
    const rollups = await store.summary({ fromMs: T0 + 2 * HOUR, toMs: T0 + 4 * HOUR, groupBy: ['user'] });
    expect(rollups.totals.input_tokens).toBe(1.2e19);
    expect(rollups.totals.cost_usd).toBe(1.2e10);
    const series = await store.timeseries({
      interval: 'hour',
      metric: 'input_tokens',
      groupBy: ['user'],
      fromMs: T0 - 14 * HOUR,
      toMs: T0 + 10 * HOUR,
    });
    expect(series.series[0]!.points.map((p) => p.value)).toContain(6e18);
    await store.close();
  });
});

describe.each(DURABILITIES)('times no report can label (%s)', (durability) => {
  it('rows an older version stored far outside 1970..9999 do not break events, summaries or timeseries', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    store.write(makeRecord({ id: 'template', startMs: T0 }));
    await store.flush();
    const other = new Database(path);
    for (const [id, at] of [
      ['far-future', 9e15],
      ['far-past', -9e15],
      ['farther-past', -9.1e15],
    ] as const) {
      other.exec(
        `INSERT INTO usage (${COLUMNS}) SELECT ${COLUMNS.replace('id, time_ms, end_ms', `'${id}', ${at}, ${at}`)} FROM usage WHERE id = 'template'`,
      );
    }
    // Their rollups: a future hour for the model rollup, a past one for the full one, a day.
    other.exec(
      `INSERT INTO usage_model_hourly SELECT 9000000000000000, model, provider, operation, outcome, requests, errors, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, cost_nanos, unpriced_requests, duration_ms_sum, latency_hist, ttft_hist FROM usage_model_hourly`,
    );
    other.exec(
      `INSERT INTO usage_hourly SELECT -9000000000000000, model, provider, user, project, feature, operation, outcome, requests, errors, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, cost_nanos, unpriced_requests, duration_ms_sum, latency_hist, ttft_hist FROM usage_hourly`,
    );
    other.exec(
      `INSERT INTO usage_daily SELECT 8999999971200000, model, provider, user, project, feature, operation, outcome, requests, errors, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, cost_nanos, unpriced_requests, duration_ms_sum, latency_hist, ttft_hist FROM usage_daily`,
    );
    other.close();
    expect((await store.events({})).events.map((e) => e.id)).toHaveLength(4);
    // A page at a time, past the row before 1970 too.
    const ids: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 5; pages++) {
      const page = await store.events({ limit: 1, cursor });
      ids.push(...page.events.map((e) => e.id));
      cursor = page.next_cursor ?? undefined;
      if (!cursor) break;
    }
    expect(ids).toEqual(['far-future', 'template', 'far-past', 'farther-past']);
    for (const groupBy of [
      ['hour'],
      ['day'],
      ['week'],
      ['month'],
      ['model', 'day'],
      ['user', 'hour'],
    ] as const) {
      const { totals } = await store.summary({ groupBy: [...groupBy], tz: 'America/New_York' });
      expect(totals.requests, groupBy.join()).toBeGreaterThanOrEqual(2);
    }
    await expect(store.timeseries({ interval: 'day', metric: 'requests' })).rejects.toSatisfy(
      (error) => (error as { name?: string }).name === 'InvalidQueryError',
    );
    await store.close();
  });
});
