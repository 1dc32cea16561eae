/**
 * Timeseries for the dashboard's plots: a summary grouped by a time bucket and dimensions,
 * pivoted into one series per group with every bucket of the range present (0 when empty).
 *
 * A response is bounded before it is built: at most MAX_TIMESERIES_BUCKETS buckets (a range
 * and interval with more are refused, naming the field), at most MAX_TIMESERIES_POINTS points
 * (series × buckets), so the series shown are the largest in the metric and the rest are added
 * up in one `other` series. Four hundred users by hour over a year would otherwise be 3.5
 * million points.
 */
import { bucketLabel, bucketStart, nextBucketLabel } from '../common/buckets.js';
import { InvalidQueryError } from './errors.js';
import { type RunSql, summarize } from './summary.js';
import type { Dimension, SummaryRow, TimeBucket, TimeseriesQuery, TimeseriesResult } from './types.js';

export const MAX_TIMESERIES_BUCKETS = 10_000;
export const MAX_TIMESERIES_POINTS = 100_000;
export const MAX_TIMESERIES_SERIES = 100;
export const DEFAULT_TIMESERIES_SERIES = 20;

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_TIMESERIES_SERIES;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TIMESERIES_SERIES) {
    throw new InvalidQueryError(
      'limit',
      `Expected \`limit\` to be an integer from 1 to ${MAX_TIMESERIES_SERIES}.`,
    );
  }
  return limit;
}

/** The bucket labels from `first` to `last`; null past MAX_TIMESERIES_BUCKETS. */
function axisOf(first: string, last: string, unit: TimeBucket): string[] | null {
  const axis: string[] = [];
  for (let label = first; label <= last; label = nextBucketLabel(label, unit)) {
    if (axis.length === MAX_TIMESERIES_BUCKETS) return null;
    axis.push(label);
  }
  return axis;
}

export function timeseries(run: RunSql, query: TimeseriesQuery, prunedBeforeMs: number): TimeseriesResult {
  const unit = query.interval;
  const tz = query.tz ?? 'UTC';
  const dims: readonly Dimension[] = query.groupBy ?? [];
  const limit = checkLimit(query.limit);
  const empty: TimeseriesResult = { interval: unit, metric: query.metric, series: [] };
  // Without both ends the range is the data's: the fix is to give them.
  const field = query.fromMs === undefined || query.toMs === undefined ? 'from' : 'interval';
  const tooLong = () =>
    new InvalidQueryError(
      field,
      `The range holds more than ${MAX_TIMESERIES_BUCKETS} \`${unit}\` buckets: narrow \`from\` and \`to\`, or choose a coarser \`interval\`.`,
    );
  const base = { fromMs: query.fromMs, toMs: query.toMs, filters: query.filters, tz };
  const options = { rankBy: query.metric, percentiles: false, bucketsField: field };
  const byTime = () =>
    summarize(run, { ...base, groupBy: [unit] }, prunedBeforeMs, {
      ...options,
      maxRows: MAX_TIMESERIES_BUCKETS,
    }).rows;

  // The axis: the range's buckets, refused before any SQL when there are too many; without
  // both ends, the data's first or last bucket stands for the missing one.
  let ungrouped: SummaryRow[] | null = null;
  let first: string;
  let last: string;
  if (query.fromMs !== undefined && query.toMs !== undefined) {
    if (query.fromMs >= query.toMs) return empty;
    first = bucketLabel(query.fromMs, unit, tz);
    last = bucketLabel(query.toMs - 1, unit, tz);
  } else {
    ungrouped = byTime();
    if (ungrouped.length === 0) return empty;
    const labels = ungrouped.map((row) => row[unit] as string).sort();
    first = query.fromMs === undefined ? labels[0]! : bucketLabel(query.fromMs, unit, tz);
    last = query.toMs === undefined ? labels.at(-1)! : bucketLabel(query.toMs - 1, unit, tz);
  }
  const axis = axisOf(first, last, unit);
  if (!axis) throw tooLong();

  const rows =
    dims.length === 0
      ? (ungrouped ?? byTime())
      : summarize(
          run,
          {
            ...base,
            groupBy: [unit, ...dims],
            // One series is the rest, added up.
            limit: Math.min(limit, Math.floor(MAX_TIMESERIES_POINTS / axis.length) - 1),
          },
          prunedBeforeMs,
          { ...options, maxRows: MAX_TIMESERIES_POINTS },
        ).rows;
  if (rows.length === 0) return empty;
  return { interval: unit, metric: query.metric, series: pivot(rows, query, axis) };
}

interface Series {
  key: Partial<Record<Dimension, string | null>>;
  values: Map<string, number | null>;
  total: number;
  other?: true;
  other_groups?: number;
}

function pivot(rows: readonly SummaryRow[], query: TimeseriesQuery, axis: readonly string[]) {
  const unit = query.interval;
  const tz = query.tz ?? 'UTC';
  const dims: readonly Dimension[] = query.groupBy ?? [];
  const series = new Map<string, Series>();
  for (const row of rows) {
    const label = row[unit];
    if (typeof label !== 'string') continue;
    const key: Partial<Record<Dimension, string | null>> = {};
    for (const dim of dims) key[dim] = row[dim] ?? null;
    const id = row.other ? 'other' : JSON.stringify(dims.map((dim) => key[dim]));
    let entry = series.get(id);
    if (!entry) {
      entry = { key, values: new Map(), total: 0 };
      if (row.other) Object.assign(entry, { other: true, other_groups: row.other_groups ?? 0 });
      series.set(id, entry);
    }
    const value = row[query.metric];
    entry.values.set(label, value);
    entry.total += value ?? 0;
  }
  const instants = axis.map((label) => new Date(bucketStart(label, unit, tz)).toISOString());
  return [...series.values()]
    .sort((a, b) => (a.other === b.other ? b.total - a.total : a.other ? 1 : -1))
    .map((entry) => ({
      key: entry.key,
      ...(entry.other ? { other: true as const, other_groups: entry.other_groups } : {}),
      points: axis.map((label, i) => ({
        t: instants[i]!,
        value: entry.values.has(label) ? entry.values.get(label)! : 0,
      })),
    }));
}
