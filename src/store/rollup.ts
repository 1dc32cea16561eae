/**
 * Rollups: what a batch of newly inserted rows adds to each rollup table, and the upsert that
 * adds it. Only rows that were actually inserted are passed here, so a record written twice is
 * counted once.
 */

import { DAY_MS, HOUR_MS } from '../common/buckets.js';
import { bucketIndex, encodeIndices } from './histogram.js';
import type { UsageRow } from './row.js';
import { DIMENSIONS, type Dimension } from './types.js';

export interface RollupTable {
  name: string;
  /** The bucket's start, epoch ms: `hour_ms` (UTC hours) or `day_ms` (UTC days). */
  timeColumn: 'hour_ms' | 'day_ms';
  grainMs: number;
  dims: readonly Dimension[];
}

export const MODEL_HOURLY: RollupTable = {
  name: 'usage_model_hourly',
  timeColumn: 'hour_ms',
  grainMs: HOUR_MS,
  dims: ['model', 'provider', 'operation', 'outcome'],
};
export const HOURLY: RollupTable = {
  name: 'usage_hourly',
  timeColumn: 'hour_ms',
  grainMs: HOUR_MS,
  dims: DIMENSIONS,
};
export const DAILY: RollupTable = {
  name: 'usage_daily',
  timeColumn: 'day_ms',
  grainMs: DAY_MS,
  dims: DIMENSIONS,
};

export const ROLLUP_TABLES: readonly RollupTable[] = [MODEL_HOURLY, HOURLY, DAILY];

/** Additive columns, the same in every rollup table. */
export const SUM_COLUMNS = [
  'requests',
  'errors',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'cost_nanos',
  'unpriced_requests',
  'duration_ms_sum',
] as const;
export type SumColumn = (typeof SUM_COLUMNS)[number];

export const HISTOGRAM_COLUMNS = ['latency_hist', 'ttft_hist'] as const;

/**
 * Rollup sums saturate here instead of overflowing: a sum that did overflow 64 bits would make
 * SQLite refuse the upsert, and with it every later commit. 2^53 - 1 keeps them exact as JS
 * numbers; it is 90 million calls of the largest token figure a row can hold (MAX_TOKENS).
 */
export const MAX_SUM = Number.MAX_SAFE_INTEGER;

interface Group {
  bucketMs: number;
  keys: string[];
  sums: Record<SumColumn, number>;
  /** Histogram bucket of each value: a batch's group holds few values, a list is cheapest. */
  latency: number[];
  ttft: number[];
}

const zeroSums = (): Record<SumColumn, number> => ({
  requests: 0,
  errors: 0,
  input_tokens: 0,
  cached_input_tokens: 0,
  cache_write_input_tokens: 0,
  output_tokens: 0,
  reasoning_tokens: 0,
  cost_nanos: 0,
  unpriced_requests: 0,
  duration_ms_sum: 0,
});

const num = (value: string | number | null): number => (typeof value === 'number' ? value : 0);
const add = (sum: number, value: string | number | null): number => Math.min(MAX_SUM, sum + num(value));

function addBucket(buckets: number[], ms: string | number | null): void {
  if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) buckets.push(bucketIndex(ms));
}

export interface RollupBatch {
  add(row: UsageRow): void;
  /** Upsert parameters, one per (table, group). */
  params(): Array<{ table: RollupTable; values: Record<string, string | number | Buffer> }>;
}

export function createRollupBatch(tables: readonly RollupTable[] = ROLLUP_TABLES): RollupBatch {
  const groups = tables.map(() => new Map<string, Group>());
  return {
    add(row) {
      for (let t = 0; t < tables.length; t++) {
        const { dims, grainMs } = tables[t]!;
        const bucketMs = Math.floor((row.time_ms as number) / grainMs) * grainMs;
        let id = String(bucketMs);
        for (const dim of dims) id += `\u0000${row[dim] ?? ''}`;
        let group = groups[t]!.get(id);
        if (!group) {
          const keys = dims.map((dim) => (row[dim] ?? '') as string);
          group = { bucketMs, keys, sums: zeroSums(), latency: [], ttft: [] };
          groups[t]!.set(id, group);
        }
        const sums = group.sums;
        sums.requests += 1;
        if (row.outcome === 'error') sums.errors += 1;
        sums.input_tokens = add(sums.input_tokens, row.input_tokens);
        sums.cached_input_tokens = add(sums.cached_input_tokens, row.cached_input_tokens);
        sums.cache_write_input_tokens = add(sums.cache_write_input_tokens, row.cache_write_input_tokens);
        sums.output_tokens = add(sums.output_tokens, row.output_tokens);
        sums.reasoning_tokens = add(sums.reasoning_tokens, row.reasoning_tokens);
        if (row.cost_nanos === null) sums.unpriced_requests += 1;
        else sums.cost_nanos = add(sums.cost_nanos, row.cost_nanos);
        sums.duration_ms_sum = add(sums.duration_ms_sum, row.duration_ms);
        addBucket(group.latency, row.duration_ms);
        addBucket(group.ttft, row.ttft_ms);
      }
    },
    params() {
      return tables.flatMap((table, t) =>
        [...groups[t]!.values()].map((group) => {
          const values: Record<string, string | number | Buffer> = {
            [table.timeColumn]: group.bucketMs,
            ...group.sums,
          };
          table.dims.forEach((dim, i) => {
            values[dim] = group.keys[i]!;
          });
          values['latency_hist'] = encodeIndices(group.latency);
          values['ttft_hist'] = encodeIndices(group.ttft);
          return { table, values };
        }),
      );
    },
  };
}

/**
 * What the rows this transaction inserted (`seq` above the parameter) add to `table`, grouped
 * and added in SQL: the writer worker's commit (writer-worker.ts), which has no JS rollup code of
 * its own, only these statements. Every inserted row has a `seq` above every row that was there
 * before the transaction (a new rowid is one more than the largest), so a duplicate id, skipped
 * by the insert, is never counted. The same figures as createRollupBatch: sums saturate at
 * MAX_SUM (`total` is a float sum that cannot overflow, exact below 2^53), histograms are built
 * by llm_meter_hist_of from the same buckets.
 */
export function rollupFromUsageSql(table: RollupTable): string {
  const keys = [table.timeColumn, ...table.dims];
  const columns = [...keys, ...SUM_COLUMNS, ...HISTOGRAM_COLUMNS];
  const capped = (expr: string) => `CAST(min(total(${expr}), ${MAX_SUM}) AS INTEGER)`;
  const sums: Record<SumColumn, string> = {
    requests: 'count(*)',
    errors: "sum(outcome = 'error')",
    input_tokens: capped('input_tokens'),
    cached_input_tokens: capped('cached_input_tokens'),
    cache_write_input_tokens: capped('cache_write_input_tokens'),
    output_tokens: capped('output_tokens'),
    reasoning_tokens: capped('reasoning_tokens'),
    cost_nanos: capped('cost_nanos'),
    unpriced_requests: 'sum(cost_nanos IS NULL)',
    duration_ms_sum: `min(total(duration_ms), ${MAX_SUM})`,
  };
  const selected = [
    `(time_ms / ${table.grainMs}) * ${table.grainMs}`,
    ...table.dims.map((dim) => `coalesce(${dim}, '')`),
    ...SUM_COLUMNS.map((c) => sums[c]),
    'llm_meter_hist_of(duration_ms)',
    'llm_meter_hist_of(ttft_ms)',
  ];
  return (
    `INSERT INTO ${table.name} (${columns.join(', ')}) ` +
    `SELECT ${selected.join(', ')} FROM usage WHERE seq > ? GROUP BY ${keys.map((_, i) => i + 1).join(', ')} ` +
    `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${upsertUpdates().join(', ')}`
  );
}

function upsertUpdates(): string[] {
  return [
    ...SUM_COLUMNS.map((c) => `${c} = min(${c} + excluded.${c}, ${MAX_SUM})`),
    ...HISTOGRAM_COLUMNS.map((c) => `${c} = llm_meter_hist_add(${c}, excluded.${c})`),
  ];
}

/**
 * Column names come from the constants above, never from input. SQLite turns an integer `+`
 * that overflows into a REAL, which `min` brings back under MAX_SUM as an INTEGER.
 */
export function upsertSql(table: RollupTable): string {
  const keys = [table.timeColumn, ...table.dims];
  const columns = [...keys, ...SUM_COLUMNS, ...HISTOGRAM_COLUMNS];
  return (
    `INSERT INTO ${table.name} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')}) ` +
    `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${upsertUpdates().join(', ')}`
  );
}
