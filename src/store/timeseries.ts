/**
 * Timeseries for the dashboard's plots: a summary grouped by a time bucket and dimensions,
 * pivoted into one series per group with every bucket of the range present (0 when empty).
 */
import { bucketLabel, bucketStart, nextBucketLabel } from './buckets.js';
import type { Dimension, SummaryResult, TimeseriesQuery, TimeseriesResult } from './types.js';

/** Beyond this many buckets, only buckets with calls are returned. */
export const MAX_FILLED_POINTS = 10_000;

export function toTimeseries(summary: SummaryResult, query: TimeseriesQuery): TimeseriesResult {
  const unit = query.interval;
  const tz = query.tz ?? 'UTC';
  const dims: readonly Dimension[] = query.groupBy ?? [];
  const series = new Map<
    string,
    { key: Partial<Record<Dimension, string | null>>; values: Map<string, number | null>; total: number }
  >();
  const labels = new Set<string>();
  for (const row of summary.rows) {
    const label = row[unit];
    if (typeof label !== 'string') continue;
    labels.add(label);
    const key: Partial<Record<Dimension, string | null>> = {};
    for (const dim of dims) key[dim] = row[dim] ?? null;
    const id = JSON.stringify(dims.map((dim) => key[dim]));
    let entry = series.get(id);
    if (!entry) {
      entry = { key, values: new Map(), total: 0 };
      series.set(id, entry);
    }
    const value = row[query.metric];
    entry.values.set(label, value);
    entry.total += value ?? 0;
  }
  if (series.size === 0) return { interval: unit, metric: query.metric, series: [] };

  const sorted = [...labels].sort();
  const first = query.fromMs === undefined ? sorted[0]! : bucketLabel(query.fromMs, unit, tz);
  const last = query.toMs === undefined ? sorted.at(-1)! : bucketLabel(query.toMs - 1, unit, tz);
  const axis: string[] = [];
  for (
    let label = first;
    label <= last && axis.length <= MAX_FILLED_POINTS;
    label = nextBucketLabel(label, unit)
  ) {
    axis.push(label);
  }
  const buckets = axis.length > MAX_FILLED_POINTS ? sorted : axis;
  const instants = new Map(
    buckets.map((label) => [label, new Date(bucketStart(label, unit, tz)).toISOString()]),
  );

  return {
    interval: unit,
    metric: query.metric,
    series: [...series.values()]
      .sort((a, b) => b.total - a.total)
      .map((entry) => ({
        key: entry.key,
        points: buckets.map((label) => ({
          t: instants.get(label)!,
          value: entry.values.has(label) ? entry.values.get(label)! : 0,
        })),
      })),
  };
}
