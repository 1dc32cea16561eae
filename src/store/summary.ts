/**
 * Usage summaries: which tables answer a query, the SQL for each part, and merging the parts.
 *
 * A query that only needs the model dimensions (model, provider, operation, outcome) reads the
 * small model rollup for every whole hour. Otherwise whole UTC days come from the daily rollup
 * (unless the report groups by hour, or by calendar buckets of another time zone), the whole
 * hours around them from the hourly rollup, and the ragged edges of a range that does not
 * start or end on an hour from raw rows through an index.
 */
import { createBucketLabeler, DAY_MS, HOUR_MS } from '../common/buckets.js';
import { InvalidQueryError } from './errors.js';
import { filterEntries, type TimeRange, whereClause } from './filters.js';
import { addGroup, addRow, type Group, type GroupKeys, metricsOf, newGroup, remainder } from './groups.js';
import { DAILY, HOURLY, MODEL_HOURLY, type RollupTable, SUM_COLUMNS } from './rollup.js';
import {
  type Dimension,
  GROUP_BY_KEYS,
  type GroupByKey,
  type SummaryQuery,
  type SummaryResult,
  type SummaryRow,
  TIME_BUCKETS,
  type TimeBucket,
  type TimeseriesMetric,
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

/** Which groups a part is limited to, and whether it computes latency histograms. */
export interface PartOptions {
  /** Default true; timeseries and ranking need none. */
  histograms?: boolean | undefined;
  /** Only these groups of `dims`, as stored ('' for a call without a value). */
  only?: { dims: readonly Dimension[]; keys: readonly string[][] } | undefined;
}

/** `only` as a condition: `user IN (...)`, or `(user, model) IN (VALUES (...), ...)`. */
function onlyClause(only: PartOptions['only'], raw: boolean) {
  const none = { conditions: [] as string[], params: [] as string[] };
  if (!only) return none;
  if (only.keys.length === 0) return { conditions: ['0'], params: [] };
  // Raw rows keep NULL where rollups keep ''.
  const columns = only.dims.map((dim) => (raw ? `COALESCE(${dim}, '')` : dim));
  if (columns.length === 1) {
    return {
      conditions: [`${columns[0]} IN (${only.keys.map(() => '?').join(', ')})`],
      params: only.keys.map((key) => key[0]!),
    };
  }
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  return {
    conditions: [`(${columns.join(', ')}) IN (VALUES ${only.keys.map(() => tuple).join(', ')})`],
    params: only.keys.flat(),
  };
}

function rollupPart(
  table: RollupTable,
  range: Range,
  dims: Dimension[],
  units: readonly TimeBucket[],
  tz: string,
  filters: Array<[Dimension, string[]]>,
  options: PartOptions,
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
  // total() sums as a float: it never overflows, whatever an older version left in a row.
  const select = [
    ...keys,
    ...SUM_COLUMNS.map((c) => `total(${c}) AS ${c}`),
    ...(options.histograms === false
      ? []
      : ['llm_meter_hist_sum(latency_hist) AS latency_hist', 'llm_meter_hist_sum(ttft_hist) AS ttft_hist']),
  ];
  const where = whereClause(table.timeColumn, range, filters, onlyClause(options.only, false));
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
  options: PartOptions,
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
    ...(options.histograms === false
      ? []
      : ['llm_meter_hist_of(duration_ms) AS latency_hist', 'llm_meter_hist_of(ttft_ms) AS ttft_hist']),
  ];
  const where = whereClause('time_ms', range, filters, onlyClause(options.only, true));
  const groupClause = keys.length ? ` GROUP BY ${keys.map((_, i) => i + 1).join(', ')}` : '';
  return {
    sql: `SELECT ${select.join(', ')} FROM usage${where.sql}${groupClause}`,
    params: where.params,
    source: 'usage',
  };
}

/** The SQL for each part of a summary; exported for the EXPLAIN QUERY PLAN tests. */
export function summarySql(query: SummaryQuery, prunedBeforeMs = 0, options: PartOptions = {}): SqlPart[] {
  const groupBy = checkGroupBy(query.groupBy);
  const filters = filterEntries(query.filters);
  const dims = groupBy.filter((key): key is Dimension => !isTimeBucket(key));
  const units = groupBy.filter(isTimeBucket);
  const needed = [...dims, ...filters.map(([dim]) => dim), ...(options.only?.dims ?? [])];
  const modelOnly = needed.every((dim) => MODEL_HOURLY.dims.includes(dim));
  // UTC days can make up a report's buckets only when those are UTC days, weeks or months.
  const tz = query.tz ?? 'UTC';
  const daily =
    !modelOnly && (units.length === 0 || (!units.includes('hour') && (tz === 'UTC' || tz === 'Etc/UTC')));
  return planSegments(query, { daily, prunedBeforeMs }).map((segment) => {
    if (segment.level === 'raw') return rawPart(segment, dims, units.length > 0, filters, options);
    const table = segment.level === 'day' ? DAILY : modelOnly ? MODEL_HOURLY : HOURLY;
    return rollupPart(table, segment, dims, units, tz, filters, options);
  });
}

/** How the groups of a report are ranked when only the first ones are shown. */
const RANK_ORDER: Record<TimeseriesMetric, string> = {
  // Groups without a priced call rank after every priced one, as in the report's own order.
  cost_usd: 'CASE WHEN total(requests) > total(unpriced_requests) THEN total(cost_nanos) ELSE -1 END',
  requests: 'total(requests)',
  input_tokens: 'total(input_tokens)',
  output_tokens: 'total(output_tokens)',
  errors: 'total(errors)',
};

/**
 * The first `top` groups of `dims` over the whole range, by `rankBy`, and how many groups
 * there are. SQLite merges the parts (UNION ALL) and sorts the groups, so however many there
 * are, only `top` of them reach JS.
 */
export function rankSql(
  query: SummaryQuery,
  dims: readonly Dimension[],
  top: number,
  rankBy: TimeseriesMetric,
  prunedBeforeMs = 0,
): SqlPart | null {
  const parts = summarySql({ ...query, groupBy: dims }, prunedBeforeMs, { histograms: false });
  if (parts.length === 0) return null;
  const keys = dims.join(', ');
  return {
    sql:
      `SELECT ${keys}, count(*) OVER () AS groups FROM (${parts.map((part) => part.sql).join(' UNION ALL ')}) ` +
      `GROUP BY ${keys} ORDER BY ${RANK_ORDER[rankBy]} DESC, total(requests) DESC, ${keys} LIMIT ?`,
    params: [...parts.flatMap((part) => part.params), top],
    source: 'rank',
  };
}

export type RunSql = (part: SqlPart) => Iterable<Record<string, unknown>>;

/** Most dimension groups a summary returns (and its `limit`'s default): the rest are folded. */
export const MAX_SUMMARY_GROUPS = 1_000;
/** Most rows a summary returns: time buckets × (groups + the folded rest). */
export const MAX_SUMMARY_ROWS = 10_000;

/** How a report is summed up; the defaults are the summary's. */
export interface SummaryOptions {
  /** What ranks the groups when only the first ones are shown. Default `cost_usd`. */
  rankBy?: TimeseriesMetric | undefined;
  /** Latency and TTFT percentiles. Default true. */
  percentiles?: boolean | undefined;
  /** Most rows. Default MAX_SUMMARY_ROWS. */
  maxRows?: number | undefined;
  /** The query field a 400 names when the time buckets alone are too many. Default `group_by`. */
  bucketsField?: string | undefined;
}

interface Context {
  run: RunSql;
  query: SummaryQuery;
  prunedBeforeMs: number;
  percentiles: boolean;
  labelers: Map<TimeBucket, (bucketMs: number) => string>;
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_SUMMARY_GROUPS;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SUMMARY_GROUPS) {
    throw new InvalidQueryError(
      'limit',
      `Expected \`limit\` to be an integer from 1 to ${MAX_SUMMARY_GROUPS}.`,
    );
  }
  return limit;
}

const idOf = (keys: GroupKeys, by: readonly GroupByKey[]) => JSON.stringify(by.map((key) => keys[key]));

/**
 * The groups of `groupBy`, merged over every part of the report; null as soon as there would
 * be more than `maxRows` of them or more than `maxGroups` distinct dimension groups (the
 * statement is abandoned there, so a report over millions of groups costs no more memory).
 */
function collect(
  c: Context,
  groupBy: readonly GroupByKey[],
  limits: { maxGroups: number; maxRows: number; only?: PartOptions['only'] },
): Map<string, Group> | null {
  const dims = groupBy.filter((key): key is Dimension => !isTimeBucket(key));
  const groups = new Map<string, Group>();
  const dimGroups = new Set<string>();
  const parts = summarySql({ ...c.query, groupBy }, c.prunedBeforeMs, {
    histograms: c.percentiles,
    only: limits.only,
  });
  for (const part of parts) {
    for (const row of c.run(part)) {
      if (!row['requests']) continue;
      const keys: GroupKeys = {};
      for (const key of groupBy) {
        if (isTimeBucket(key)) keys[key] = c.labelers.get(key)!(row['bucket_ms'] as number);
        else keys[key] = (row[key] as string) || null;
      }
      const id = idOf(keys, groupBy);
      let group = groups.get(id);
      if (!group) {
        if (groups.size >= limits.maxRows) return null;
        if (dims.length > 0) {
          dimGroups.add(idOf(keys, dims));
          if (dimGroups.size > limits.maxGroups) return null;
        }
        group = newGroup(keys, c.percentiles);
        groups.set(id, group);
      }
      addRow(group, row);
    }
  }
  return groups;
}

function tooManyBuckets(field: string, units: readonly TimeBucket[], maxRows: number): InvalidQueryError {
  return new InvalidQueryError(
    field,
    `The range holds more than ${maxRows} \`${units.join('`/`')}\` buckets with calls: narrow \`from\` and \`to\`, or choose a coarser bucket.`,
  );
}

/**
 * A summary of at most `limit` dimension groups and at most `maxRows` rows. When there are more
 * groups, the first ones by `rankBy` over the whole range are shown, and the rest of each time
 * bucket is one row with `other: true` (its dimensions null, `other_groups` saying how many
 * groups it holds); the totals still count every call.
 */
export function summarize(
  run: RunSql,
  query: SummaryQuery,
  prunedBeforeMs: number,
  options: SummaryOptions = {},
): SummaryResult {
  const groupBy = checkGroupBy(query.groupBy);
  const limit = checkLimit(query.limit);
  const maxRows = options.maxRows ?? MAX_SUMMARY_ROWS;
  const tz = query.tz ?? 'UTC';
  const dims = groupBy.filter((key): key is Dimension => !isTimeBucket(key));
  const units = groupBy.filter(isTimeBucket);
  const c: Context = {
    run,
    query,
    prunedBeforeMs,
    percentiles: options.percentiles ?? true,
    labelers: new Map(units.map((unit) => [unit, createBucketLabeler(unit, tz)] as const)),
  };

  const all = collect(c, groupBy, { maxGroups: limit, maxRows });
  if (all) return result(groupBy, [...all.values()], [...all.values()], c.percentiles);
  const bucketsField = options.bucketsField ?? 'group_by';
  if (dims.length === 0) throw tooManyBuckets(bucketsField, units, maxRows);

  // Too many groups: the rest of each bucket beside the first groups is one row.
  const byTime = collect(c, units, { maxGroups: Number.POSITIVE_INFINITY, maxRows });
  if (!byTime) throw tooManyBuckets(bucketsField, units, maxRows);
  const top = Math.min(limit, Math.floor(maxRows / Math.max(1, byTime.size)) - 1);
  if (top < 1) {
    throw new InvalidQueryError(
      'group_by',
      `More than ${maxRows} rows: ${byTime.size} buckets, each with its groups; narrow \`from\` and \`to\`, choose a coarser bucket, or group by fewer keys.`,
    );
  }
  const rank = rankSql(query, dims, top, options.rankBy ?? 'cost_usd', prunedBeforeMs);
  const ranked = rank ? [...run(rank)] : [];
  const keys = ranked.map((row) => dims.map((dim) => String(row[dim] ?? '')));
  const groups = Number(ranked[0]?.['groups'] ?? 0);
  const shown = collect(c, groupBy, {
    maxGroups: Number.POSITIVE_INFINITY,
    maxRows: Number.POSITIVE_INFINITY,
    only: { dims, keys },
  })!;
  const inBucket = new Map<string, Group[]>();
  for (const group of shown.values()) {
    const id = idOf(group.keys, units);
    const list = inBucket.get(id);
    if (list) list.push(group);
    else inBucket.set(id, [group]);
  }
  const others: Group[] = [];
  for (const [id, bucket] of byTime) {
    const keys: GroupKeys = { ...bucket.keys };
    for (const dim of dims) keys[dim] = null;
    const rest = remainder(keys, bucket, inBucket.get(id) ?? []);
    if (rest.sums.requests > 0) others.push(rest);
  }
  return result(groupBy, [...shown.values()], [...byTime.values()], c.percentiles, {
    others,
    otherGroups: groups - keys.length,
  });
}

/** Rows in report order (time buckets, then the largest first, the folded rest last) and totals. */
function result(
  groupBy: readonly GroupByKey[],
  groups: readonly Group[],
  whole: readonly Group[],
  percentiles: boolean,
  folded: { others: readonly Group[]; otherGroups: number } = { others: [], otherGroups: 0 },
): SummaryResult {
  const total = newGroup({}, percentiles);
  for (const group of whole) addGroup(total, group);
  const rows: SummaryRow[] = [
    ...groups.map((group) => ({ ...group.keys, ...metricsOf(group) })),
    ...folded.others.map(
      (group): SummaryRow => ({
        ...group.keys,
        ...metricsOf(group),
        other: true,
        other_groups: folded.otherGroups,
      }),
    ),
  ];
  const timeKeys = groupBy.filter(isTimeBucket);
  const dimKeys = groupBy.filter((key) => !isTimeBucket(key));
  rows.sort((a, b) => {
    for (const key of timeKeys) {
      const order = compareText(a[key], b[key]);
      if (order !== 0) return order;
    }
    if (a.other !== b.other) return a.other ? 1 : -1;
    const cost = (b.cost_usd ?? -1) - (a.cost_usd ?? -1);
    if (cost !== 0) return cost;
    if (b.requests !== a.requests) return b.requests - a.requests;
    for (const key of dimKeys) {
      const order = compareText(a[key], b[key]);
      if (order !== 0) return order;
    }
    return 0;
  });
  return { rows, totals: metricsOf(total) };
}

function compareText(a: string | null | undefined, b: string | null | undefined): number {
  const x = a ?? '';
  const y = b ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}
