/**
 * Report groups being added up: the sums of one group (a dimension value, a time bucket, or
 * both) over the rows of every part of a report, its latency histograms, and its metrics.
 */
import { addEncoded, addHistogram, type Histogram, newHistogram, percentile } from './histogram.js';
import { SUM_COLUMNS, type SumColumn } from './rollup.js';
import type { GroupByKey, UsageMetrics } from './types.js';

export type GroupKeys = Partial<Record<GroupByKey, string | null>>;

export interface Group {
  keys: GroupKeys;
  sums: Record<SumColumn, number>;
  /** null when the report needs no percentiles (timeseries). */
  latency: Histogram | null;
  ttft: Histogram | null;
}

export function newGroup(keys: GroupKeys, percentiles: boolean): Group {
  const sums = {} as Record<SumColumn, number>;
  for (const column of SUM_COLUMNS) sums[column] = 0;
  return {
    keys,
    sums,
    latency: percentiles ? newHistogram() : null,
    ttft: percentiles ? newHistogram() : null,
  };
}

/** Add one SQL row (sums, encoded histograms) to a group. */
export function addRow(group: Group, row: Record<string, unknown>): void {
  for (const column of SUM_COLUMNS) group.sums[column] += Number(row[column] ?? 0);
  if (group.latency) addEncoded(group.latency, row['latency_hist'] as Uint8Array | null);
  if (group.ttft) addEncoded(group.ttft, row['ttft_hist'] as Uint8Array | null);
}

export function addGroup(target: Group, source: Group): void {
  for (const column of SUM_COLUMNS) target.sums[column] += source.sums[column];
  if (target.latency && source.latency) addHistogram(target.latency, source.latency);
  if (target.ttft && source.ttft) addHistogram(target.ttft, source.ttft);
}

/** `whole` minus `parts` (the rest of a bucket beside its shown groups), never below 0. */
export function remainder(keys: GroupKeys, whole: Group, parts: readonly Group[]): Group {
  const rest = newGroup(keys, whole.latency !== null);
  addGroup(rest, whole);
  for (const part of parts) {
    for (const column of SUM_COLUMNS) rest.sums[column] -= part.sums[column];
    for (const [target, source] of [
      [rest.latency, part.latency],
      [rest.ttft, part.ttft],
    ] as const) {
      if (target && source) for (let i = 0; i < target.length; i++) target[i]! -= source[i]!;
    }
  }
  for (const column of SUM_COLUMNS) rest.sums[column] = Math.max(0, rest.sums[column]);
  for (const histogram of [rest.latency, rest.ttft]) {
    if (histogram) for (let i = 0; i < histogram.length; i++) histogram[i] = Math.max(0, histogram[i]!);
  }
  return rest;
}

export function metricsOf(group: Group): UsageMetrics {
  const s = group.sums;
  const priced = s.requests - s.unpriced_requests;
  const p = (histogram: Histogram | null, q: number) => (histogram ? percentile(histogram, q) : null);
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
    latency_p50_ms: p(group.latency, 0.5),
    latency_p95_ms: p(group.latency, 0.95),
    ttft_p50_ms: p(group.ttft, 0.5),
    ttft_p95_ms: p(group.ttft, 0.95),
  };
}
