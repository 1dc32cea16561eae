/**
 * Report queries with a bounded cost and size (src/store/summary.ts, timeseries.ts): however
 * many users or buckets a range holds, a response has at most so many groups, rows, series and
 * points; the groups past the limit are added up in one `other` row or series, so the figures
 * still add up to the totals.
 */
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../src/record.js';
import { MAX_PAGE_BYTES } from '../src/store/events.js';
import {
  isInvalidQueryError,
  openSqliteStore,
  type SummaryRow,
  type UsageStore,
} from '../src/store/index.js';
import { MAX_TIMESERIES_BUCKETS, MAX_TIMESERIES_POINTS } from '../src/store/timeseries.js';
import { makeRecord } from './helpers/records.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2025, 2, 1);
const USERS = 120;
const pad = (i: number) => `u${String(i).padStart(3, '0')}`;

async function storeWith(records: CallRecord[]): Promise<UsageStore> {
  const store = openSqliteStore({ path: ':memory:' });
  for (const record of records) store.write(record);
  await store.flush();
  return store;
}

/** User i spends (i + 1) mUSD in one call, in hour i % 48: the largest spenders are the last. */
const spenders = () =>
  Array.from({ length: USERS }, (_, i) =>
    makeRecord({ user: pad(i), startMs: T0 + (i % 48) * HOUR + 60_000, costNanos: (i + 1) * 1e6 }),
  );

const sumOf = (rows: readonly SummaryRow[], pick: (row: SummaryRow) => number | null) =>
  rows.reduce((sum, row) => sum + (pick(row) ?? 0), 0);

describe('timeseries', () => {
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
    const store = await storeWith([makeRecord({ startMs: T0 }), makeRecord({ startMs: T0 + 500 * DAY })]);
    const year = { fromMs: T0, toMs: T0 + 2 * 365 * DAY };
    await expect(store.timeseries({ ...year, interval: 'hour', metric: 'requests' })).rejects.toSatisfy(
      (error) => isInvalidQueryError(error) && error.field === 'interval',
    );
    // Without `from`, the range is the data's: 500 days of hours.
    await expect(store.timeseries({ interval: 'hour', metric: 'requests' })).rejects.toSatisfy(
      (error) => isInvalidQueryError(error) && error.field === 'from',
    );
    expect((await store.timeseries({ ...year, interval: 'day', metric: 'requests' })).series).toHaveLength(1);
    await expect(store.timeseries({ interval: 'day', metric: 'requests', limit: 0 })).rejects.toSatisfy(
      (error) => isInvalidQueryError(error) && error.field === 'limit',
    );
    await store.close();
  });
});

describe('summary', () => {
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
    expect(other).toMatchObject({ other: true, other_groups: USERS - 10, user: null, requests: USERS - 10 });
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
        records.push(makeRecord({ user: pad(i), startMs: T0 + hour * HOUR + i, costNanos: (i + 1) * 1e6 }));
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

describe('events', () => {
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
