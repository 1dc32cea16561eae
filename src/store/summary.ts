/**
 * Usage summaries: which tables answer a query, the SQL for each part, and merging the parts.
 *
 * A query that only needs the model dimensions (model, provider, operation, outcome) reads the
 * small model rollup for every whole hour. Otherwise whole UTC days come from the daily rollup
 * (unless the report groups by hour, or by calendar buckets of another time zone), the whole
 * hours around them from the hourly rollup, and the ragged edges of a range that does not
 * start or end on an hour from raw rows through an index.
 */
import { createBucketLabeler, DAY_MS, HOUR_MS } from './buckets.js';
import { InvalidQueryError } from './errors.js';
import { filterEntries, type TimeRange, whereClause } from './filters.js';
import { addEncoded, addHistogram, type Histogram, newHistogram, percentile } from './histogram.js';
import { DAILY, HOURLY, MODEL_HOURLY, type RollupTable, SUM_COLUMNS, type SumColumn } from './rollup.js';
import {
  type Dimension,
  GROUP_BY_KEYS,
  type GroupByKey,
  type SummaryQuery,
  type SummaryResult,
  type SummaryRow,
  TIME_BUCKETS,
  type TimeBucket,
  type UsageMetrics,
} from './types.js';

export interface SqlPart {
  sql: string;
  params: Array<string | number>;
  /** The rollup table read, or 'usage' for raw rows. */
  source: string;
}

const isTimeBucket = (key: GroupByKey): key is TimeBucket =>
  (TIME_BUCKETS as readonly string[]).includes(key);

function checkGroupBy(groupBy: readonly GroupByKey[] | undefined): GroupByKey[] {
  const keys = [...new Set(groupBy ?? [])];
  for (const key of keys) {
    if (!(GROUP_BY_KEYS as readonly string[]).includes(key)) {
      throw new InvalidQueryError('group_by', `Unknown \`group_by\` value \`${key}\`.`);
    }
  }
  return keys;
}

type Range = TimeRange;

/** A piece of a query's range and what answers it: raw rows, or rollups of a grain. */
export interface Segment extends Range {
  level: 'raw' | 'hour' | 'day';
}

const floorTo = (ms: number, grain: number) => Math.floor(ms / grain) * grain;
const ceilTo = (ms: number, grain: number) => Math.ceil(ms / grain) * grain;

/** [from, to) as the whole `grain` buckets inside it and the ragged edges around them. */
function split(range: Range, grain: number): { inner: Range | null; edges: Range[] } {
  const { fromMs, toMs } = range;
  if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) return { inner: null, edges: [] };
  const start = fromMs === undefined ? undefined : ceilTo(fromMs, grain);
  const end = toMs === undefined ? undefined : floorTo(toMs, grain);
  if (start !== undefined && end !== undefined && start >= end) return { inner: null, edges: [range] };
  const edges: Range[] = [];
  if (fromMs !== undefined && start !== fromMs) edges.push({ fromMs, toMs: start });
  if (toMs !== undefined && end !== toMs) edges.push({ fromMs: end, toMs });
  return { inner: { fromMs: start, toMs: end }, edges };
}

/**
 * Whole UTC days from daily rollups (when `daily`), whole hours from hourly rollups, the rest
 * from raw rows; a raw edge inside an hour that prune already emptied is read as that whole
 * hour from the rollups instead (reports are then exact to the hour there).
 */
export function planSegments(range: Range, options: { daily: boolean; prunedBeforeMs: number }): Segment[] {
  const segments: Segment[] = [];
  let hourRanges: Range[] = [range];
  if (options.daily) {
    const days = split(range, DAY_MS);
    if (days.inner) segments.push({ level: 'day', ...days.inner });
    hourRanges = days.edges;
  }
  for (const hourRange of hourRanges) {
    const hours = split(hourRange, HOUR_MS);
    if (hours.inner) segments.push({ level: 'hour', ...hours.inner });
    for (const edge of hours.edges) {
      if (floorTo(edge.fromMs!, HOUR_MS) < options.prunedBeforeMs) {
        segments.push({
          level: 'hour',
          fromMs: floorTo(edge.fromMs!, HOUR_MS),
          toMs: ceilTo(edge.toMs!, HOUR_MS),
        });
      } else {
        segments.push({ level: 'raw', ...edge });
      }
    }
  }
  return segments;
}

/**
 * The calendar unit rollup rows are grouped by in SQL: the finest the report asks for, except
 * that weeks and months together are grouped by day (a week can straddle two months). Null:
 * by the table's own grain (hours, or UTC days).
 */
function sqlBucket(units: readonly TimeBucket[]): TimeBucket | null {
  if (units.length === 0 || units.includes('hour')) return null;
  return units.length === 1 ? units[0]! : 'day';
}

function rollupPart(
  table: RollupTable,
  range: Range,
  dims: Dimension[],
  units: readonly TimeBucket[],
  tz: string,
  filters: Array<[Dimension, string[]]>,
): SqlPart {
  // `+column` keeps the planner from walking an index just to get groups in order: with no
  // filter on that column, a scan and a sort is several times faster than index order.
  const bucket = sqlBucket(units);
  const keys = [
    ...(units.length === 0
      ? []
      : bucket === null
        ? [`+${table.timeColumn} AS bucket_ms`]
        : [`llm_meter_bucket_start(${table.timeColumn}, ?, ?) AS bucket_ms`]),
    ...dims.map((dim) => `+${dim} AS ${dim}`),
  ];
  const select = [
    ...keys,
    ...SUM_COLUMNS.map((c) => `total(${c}) AS ${c}`),
    'llm_meter_hist_sum(latency_hist) AS latency_hist',
    'llm_meter_hist_sum(ttft_hist) AS ttft_hist',
  ];
  const where = whereClause(table.timeColumn, range, filters);
  const groupClause = keys.length ? ` GROUP BY ${keys.map((_, i) => i + 1).join(', ')}` : '';
  return {
    sql: `SELECT ${select.join(', ')} FROM ${table.name}${where.sql}${groupClause}`,
    params: bucket === null ? where.params : [bucket, tz, ...where.params],
    source: table.name,
  };
}

function rawPart(
  range: Range,
  dims: Dimension[],
  byTime: boolean,
  filters: Array<[Dimension, string[]]>,
): SqlPart {
  const keys = [
    ...(byTime ? [`(time_ms / ${HOUR_MS}) * ${HOUR_MS} AS bucket_ms`] : []),
    ...dims.map((dim) => `COALESCE(${dim}, '') AS ${dim}`),
  ];
  const select = [
    ...keys,
    'COUNT(*) AS requests',
    "total(outcome = 'error') AS errors",
    'total(input_tokens) AS input_tokens',
    'total(cached_input_tokens) AS cached_input_tokens',
    'total(cache_write_input_tokens) AS cache_write_input_tokens',
    'total(output_tokens) AS output_tokens',
    'total(reasoning_tokens) AS reasoning_tokens',
    'total(cost_nanos) AS cost_nanos',
    'total(cost_nanos IS NULL) AS unpriced_requests',
    'total(duration_ms) AS duration_ms_sum',
    'llm_meter_hist_of(duration_ms) AS latency_hist',
    'llm_meter_hist_of(ttft_ms) AS ttft_hist',
  ];
  const where = whereClause('time_ms', range, filters);
  const groupClause = keys.length ? ` GROUP BY ${keys.map((_, i) => i + 1).join(', ')}` : '';
  return {
    sql: `SELECT ${select.join(', ')} FROM usage${where.sql}${groupClause}`,
    params: where.params,
    source: 'usage',
  };
}

/** The SQL for each part of a summary; exported for the EXPLAIN QUERY PLAN tests. */
export function summarySql(query: SummaryQuery, prunedBeforeMs = 0): SqlPart[] {
  const groupBy = checkGroupBy(query.groupBy);
  const filters = filterEntries(query.filters);
  const dims = groupBy.filter((key): key is Dimension => !isTimeBucket(key));
  const units = groupBy.filter(isTimeBucket);
  const needed = [...dims, ...filters.map(([dim]) => dim)];
  const modelOnly = needed.every((dim) => MODEL_HOURLY.dims.includes(dim));
  // UTC days can make up a report's buckets only when those are UTC days, weeks or months.
  const tz = query.tz ?? 'UTC';
  const daily =
    !modelOnly && (units.length === 0 || (!units.includes('hour') && (tz === 'UTC' || tz === 'Etc/UTC')));
  return planSegments(query, { daily, prunedBeforeMs }).map((segment) => {
    if (segment.level === 'raw') return rawPart(segment, dims, units.length > 0, filters);
    const table = segment.level === 'day' ? DAILY : modelOnly ? MODEL_HOURLY : HOURLY;
    return rollupPart(table, segment, dims, units, tz, filters);
  });
}

interface Accumulator {
  keys: Partial<Record<GroupByKey, string | null>>;
  sums: Record<SumColumn, number>;
  latency: Histogram;
  ttft: Histogram;
}

function newAccumulator(keys: Partial<Record<GroupByKey, string | null>>): Accumulator {
  const sums = {} as Record<SumColumn, number>;
  for (const column of SUM_COLUMNS) sums[column] = 0;
  return { keys, sums, latency: newHistogram(), ttft: newHistogram() };
}

function metrics(acc: Accumulator): UsageMetrics {
  const s = acc.sums;
  const priced = s.requests - s.unpriced_requests;
  return {
    requests: s.requests,
    errors: s.errors,
    input_tokens: s.input_tokens,
    cached_input_tokens: s.cached_input_tokens,
    cache_write_input_tokens: s.cache_write_input_tokens,
    output_tokens: s.output_tokens,
    reasoning_tokens: s.reasoning_tokens,
    cost_usd: priced > 0 ? s.cost_nanos / 1e9 : null,
    unpriced_requests: s.unpriced_requests,
    latency_p50_ms: percentile(acc.latency, 0.5),
    latency_p95_ms: percentile(acc.latency, 0.95),
    ttft_p50_ms: percentile(acc.ttft, 0.5),
    ttft_p95_ms: percentile(acc.ttft, 0.95),
  };
}

export type RunSql = (part: SqlPart) => Iterable<Record<string, unknown>>;

export function summarize(run: RunSql, query: SummaryQuery, prunedBeforeMs: number): SummaryResult {
  const groupBy = checkGroupBy(query.groupBy);
  const tz = query.tz ?? 'UTC';
  const labelers = new Map(
    groupBy.filter(isTimeBucket).map((unit) => [unit, createBucketLabeler(unit, tz)] as const),
  );
  const groups = new Map<string, Accumulator>();
  const total = newAccumulator({});

  for (const part of summarySql(query, prunedBeforeMs)) {
    for (const row of run(part)) {
      if (!row['requests']) continue;
      const keys: Partial<Record<GroupByKey, string | null>> = {};
      for (const key of groupBy) {
        if (isTimeBucket(key)) keys[key] = labelers.get(key)!(row['bucket_ms'] as number);
        else keys[key] = (row[key] as string) || null;
      }
      const id = JSON.stringify(groupBy.map((key) => keys[key]));
      let acc = groups.get(id);
      if (!acc) {
        acc = newAccumulator(keys);
        groups.set(id, acc);
      }
      for (const column of SUM_COLUMNS) {
        const value = Number(row[column] ?? 0);
        acc.sums[column] += value;
        total.sums[column] += value;
      }
      addEncoded(acc.latency, row['latency_hist'] as Uint8Array | null);
      addEncoded(acc.ttft, row['ttft_hist'] as Uint8Array | null);
    }
  }

  const accs = [...groups.values()];
  for (const acc of accs) {
    addHistogram(total.latency, acc.latency);
    addHistogram(total.ttft, acc.ttft);
  }
  const rows: SummaryRow[] = accs.map((acc) => ({ ...acc.keys, ...metrics(acc) }));
  const timeKeys = groupBy.filter(isTimeBucket);
  const dimKeys = groupBy.filter((key) => !isTimeBucket(key));
  rows.sort((a, b) => {
    for (const key of timeKeys) {
      const order = compareText(a[key], b[key]);
      if (order !== 0) return order;
    }
    const cost = (b.cost_usd ?? -1) - (a.cost_usd ?? -1);
    if (cost !== 0) return cost;
    if (b.requests !== a.requests) return b.requests - a.requests;
    for (const key of dimKeys) {
      const order = compareText(a[key], b[key]);
      if (order !== 0) return order;
    }
    return 0;
  });
  return { rows, totals: metrics(total) };
}

function compareText(a: string | null | undefined, b: string | null | undefined): number {
  const x = a ?? '';
  const y = b ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}
