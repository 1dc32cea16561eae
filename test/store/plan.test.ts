/**
 * EXPLAIN QUERY PLAN for every report query shape: each part reads its index or a rollup table,
 * never the whole usage table.
 */
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { registerBucketFunctions } from '../../src/store/buckets.js';
import { encodeCursor } from '../../src/store/cursor.js';
import { eventsSql } from '../../src/store/events.js';
import { registerHistogramFunctions } from '../../src/store/histogram.js';
import { migrate } from '../../src/store/migrate.js';
import { planSegments, rankSql, type Segment, summarySql } from '../../src/store/summary.js';
import type { EventsQuery, SummaryQuery } from '../../src/store/types.js';

const HOUR = 3_600_000;
const T = Date.UTC(2025, 0, 1);
/** A range with ragged edges: rollups for the middle, raw rows for both ends. */
const ragged = { fromMs: T + 10, toMs: T + 10 * HOUR + 5 };

const db = new Database(':memory:');
migrate(db);
registerHistogramFunctions(db);
registerBucketFunctions(db);
afterAll(() => db.close());

function plan(sql: string, params: unknown[]): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>)
    .map((row) => row.detail)
    .join(' | ');
}

/** A full scan of raw rows reads "SCAN usage" without an index. */
const FULL_SCAN = /\bSCAN usage\b(?! USING)/;

describe('summary planning', () => {
  const D = 24 * HOUR;
  it.each<
    [string, { fromMs?: number; toMs?: number }, { daily: boolean; prunedBeforeMs?: number }, Segment[]]
  >([
    ['open range, daily', {}, { daily: true }, [{ level: 'day', fromMs: undefined, toMs: undefined }]],
    ['open range, hourly', {}, { daily: false }, [{ level: 'hour', fromMs: undefined, toMs: undefined }]],
    [
      'ragged on both sides of whole days',
      { fromMs: T + 10, toMs: T + 3 * D + 2 * HOUR + 5 },
      { daily: true },
      [
        { level: 'day', fromMs: T + D, toMs: T + 3 * D },
        { level: 'hour', fromMs: T + HOUR, toMs: T + D },
        { level: 'raw', fromMs: T + 10, toMs: T + HOUR },
        { level: 'hour', fromMs: T + 3 * D, toMs: T + 3 * D + 2 * HOUR },
        { level: 'raw', fromMs: T + 3 * D + 2 * HOUR, toMs: T + 3 * D + 2 * HOUR + 5 },
      ],
    ],
    [
      'inside one hour',
      { fromMs: T + 10, toMs: T + 20 },
      { daily: true },
      [{ level: 'raw', fromMs: T + 10, toMs: T + 20 }],
    ],
    ['empty', { fromMs: T + 20, toMs: T + 10 }, { daily: true }, []],
    [
      'the edge hour was pruned: read it whole from the rollup',
      { fromMs: T + 10, toMs: T + 2 * HOUR },
      { daily: false, prunedBeforeMs: T + HOUR },
      [
        { level: 'hour', fromMs: T + HOUR, toMs: T + 2 * HOUR },
        { level: 'hour', fromMs: T, toMs: T + HOUR },
      ],
    ],
  ])('%s', (_name, range, options, expected) => {
    expect(planSegments(range, { prunedBeforeMs: 0, ...options })).toEqual(expected);
  });
});

describe('summary query plans', () => {
  const days = { fromMs: T + 10, toMs: T + 3 * 24 * HOUR + 5 };
  it.each<[string, SummaryQuery, string[]]>([
    ['all time by model: the model rollup', { groupBy: ['model'] }, ['SCAN usage_model_hourly']],
    ['all time by user: the daily rollup', { groupBy: ['user'] }, ['SCAN usage_daily']],
    ['all time, one user', { filters: { user: 'x' } }, ['SCAN usage_daily']],
    ['by hour and user: hourly', { groupBy: ['hour', 'user'] }, ['SCAN usage_hourly']],
    [
      'aligned range by provider',
      { groupBy: ['provider'], fromMs: T, toMs: T + 10 * HOUR },
      ['SEARCH usage_model_hourly USING PRIMARY KEY (hour_ms>? AND hour_ms<?)'],
    ],
    [
      'ragged days by project: days, hours, raw edges',
      { groupBy: ['project'], ...days },
      [
        'SEARCH usage_daily USING PRIMARY KEY (day_ms>? AND day_ms<?)',
        'SEARCH usage_hourly USING PRIMARY KEY (hour_ms>? AND hour_ms<?)',
        'SEARCH usage USING INDEX usage_by_time (time_ms>? AND time_ms<?)',
        'SEARCH usage USING INDEX usage_by_time (time_ms>? AND time_ms<?)',
      ],
    ],
    [
      'ragged days, one feature, by UTC day',
      { groupBy: ['day'], filters: { feature: 'x' }, ...days },
      [
        'SEARCH usage_daily USING PRIMARY KEY (day_ms>? AND day_ms<?)',
        'SEARCH usage_hourly USING INDEX usage_hourly_by_feature (feature=? AND hour_ms>? AND hour_ms<?)',
        'SEARCH usage USING INDEX usage_by_feature (feature=? AND time_ms>? AND time_ms<?)',
        'SEARCH usage USING INDEX usage_by_feature (feature=? AND time_ms>? AND time_ms<?)',
      ],
    ],
    ...(['model', 'provider', 'user', 'project', 'feature', 'operation', 'outcome'] as const).map(
      (dim): [string, SummaryQuery, string[]] => [
        `ragged range, one ${dim}, by day in New York: hours and raw edges`,
        { groupBy: ['day'], tz: 'America/New_York', filters: { [dim]: 'x' }, ...ragged },
        [
          ['user', 'project', 'feature'].includes(dim)
            ? `SEARCH usage_hourly USING INDEX usage_hourly_by_${dim} (${dim}=? AND hour_ms>? AND hour_ms<?)`
            : 'SEARCH usage_model_hourly USING PRIMARY KEY (hour_ms>? AND hour_ms<?)',
          `SEARCH usage USING INDEX usage_by_${dim} (${dim}=? AND time_ms>? AND time_ms<?)`,
          `SEARCH usage USING INDEX usage_by_${dim} (${dim}=? AND time_ms>? AND time_ms<?)`,
        ],
      ],
    ),
  ])('%s', (_name, query, expected) => {
    const parts = summarySql(query);
    expect(parts.map((part) => plan(part.sql, part.params))).toEqual(
      expected.map((detail) => expect.stringContaining(detail)),
    );
    for (const part of parts) expect(plan(part.sql, part.params), part.sql).not.toMatch(FULL_SCAN);
  });
});

describe('plans of reports with more groups than their limit', () => {
  const days = { fromMs: T + 10, toMs: T + 3 * 24 * HOUR + 5 };
  it('the first users only, by hour: the hourly rollup through its user index, raw edges by time', () => {
    const parts = summarySql({ groupBy: ['hour', 'user'], ...days }, 0, {
      histograms: false,
      only: { dims: ['user'], keys: [['a'], ['b']] },
    });
    expect(parts.map((part) => plan(part.sql, part.params))).toEqual([
      expect.stringContaining(
        'SEARCH usage_hourly USING INDEX usage_hourly_by_user (user=? AND hour_ms>? AND hour_ms<?)',
      ),
      expect.stringContaining('SEARCH usage USING INDEX usage_by_time (time_ms>? AND time_ms<?)'),
      expect.stringContaining('SEARCH usage USING INDEX usage_by_time (time_ms>? AND time_ms<?)'),
    ]);
  });

  it.each<[string, Array<'user' | 'model'>]>([
    ['by user', ['user']],
    ['by model', ['model']],
    ['by user and model', ['user', 'model']],
  ])('ranking the groups %s reads rollups by range and raw edges by index', (_name, dims) => {
    const rank = rankSql(days, dims, 10, 'cost_usd')!;
    const detail = plan(rank.sql, rank.params);
    expect(detail).toMatch(/SEARCH usage_(model_hourly|hourly|daily) USING PRIMARY KEY/);
    expect(detail).toContain('SEARCH usage USING INDEX usage_by_time (time_ms>? AND time_ms<?)');
    expect(detail).not.toMatch(FULL_SCAN);
  });
});

describe('events query plans', () => {
  const cursor = encodeCursor({ timeMs: T, seq: 42 });
  it.each<[string, EventsQuery, string]>([
    ['newest first', {}, 'SCAN usage USING INDEX usage_by_time'],
    ['next page', { cursor }, 'SEARCH usage USING INDEX usage_by_time (time_ms<?)'],
    [
      'time range',
      { fromMs: T, toMs: T + HOUR },
      'SEARCH usage USING INDEX usage_by_time (time_ms>? AND time_ms<?)',
    ],
    ...(['model', 'provider', 'user', 'project', 'feature', 'operation', 'outcome'] as const).map(
      (dim): [string, EventsQuery, string] => [
        `filtered by ${dim}, next page`,
        { filters: { [dim]: 'x' }, cursor },
        `SEARCH usage USING INDEX usage_by_${dim} (${dim}=? AND time_ms<?)`,
      ],
    ),
  ])('%s: its index, in order (no sort)', (_name, query, expected) => {
    const { sql, params } = eventsSql(query);
    const detail = plan(sql, params);
    expect(detail).toContain(expected);
    expect(detail).not.toMatch(FULL_SCAN);
    expect(detail, 'the index order is the page order').not.toContain('TEMP B-TREE');
  });
});
