/**
 * The usage store: where every CallRecord is persisted and where reports come from.
 *
 * Small on purpose, so that a server database can implement it later without touching the
 * meter or the HTTP API. Writes are fire-and-forget (`write` never throws and never waits);
 * reads are async. Report field names are snake_case because they are the HTTP API's.
 */
import { TIME_BUCKETS, type TimeBucket } from '../common/buckets.js';
import type { CallRecord, Operation, Outcome } from '../record.js';

export { TIME_BUCKETS, type TimeBucket };

/** Dimensions a report can be filtered and grouped by. */
export const DIMENSIONS = [
  'model',
  'provider',
  'user',
  'project',
  'feature',
  'operation',
  'outcome',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export const GROUP_BY_KEYS = [...DIMENSIONS, ...TIME_BUCKETS] as const;
export type GroupByKey = Dimension | TimeBucket;

/** Equality filters; several values for one dimension match any of them. */
export type UsageFilters = Partial<Record<Dimension, string | readonly string[]>>;

export interface TimeRange {
  /** Inclusive, epoch ms. Omitted: from the first call. */
  fromMs?: number | undefined;
  /** Exclusive, epoch ms. Omitted: up to now. */
  toMs?: number | undefined;
}

export interface SummaryQuery extends TimeRange {
  groupBy?: readonly GroupByKey[] | undefined;
  filters?: UsageFilters | undefined;
  /** IANA time zone for day, week and month buckets. Default `UTC`. */
  tz?: string | undefined;
  /**
   * Most dimension groups shown, 1..1000 (default 1000): past it, the groups with the largest
   * cost are shown and the rest of each time bucket is one row with `other: true`. A summary
   * also has at most 10 000 rows (time buckets × groups); the first groups are fewer then.
   */
  limit?: number | undefined;
}

export interface UsageMetrics {
  requests: number;
  /** Calls whose outcome is `error`. */
  errors: number;
  /** All input tokens, cache reads and writes included. */
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_input_tokens: number;
  /** Output tokens, reasoning included. */
  output_tokens: number;
  reasoning_tokens: number;
  /** Cost of the priced calls; null when none of the calls had a known price. */
  cost_usd: number | null;
  /** Calls without a known price: when > 0, `cost_usd` is a lower bound. */
  unpriced_requests: number;
  /** Percentiles from log-bucket histograms: within 4.5% of the exact value. */
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
}

/**
 * One summary group: the `group_by` keys (a dimension's value, null when the call had none;
 * `hour` an ISO instant, `day` and `week` a local date `YYYY-MM-DD`, `month` `YYYY-MM`) and
 * its metrics.
 */
export type SummaryRow = Partial<Record<GroupByKey, string | null>> &
  UsageMetrics & {
    /** The groups past `limit`, added up (their dimensions are null): one such row per time bucket. */
    other?: true;
    /** How many groups an `other` row adds up, over the whole range. */
    other_groups?: number;
  };

export interface SummaryResult {
  rows: SummaryRow[];
  totals: UsageMetrics;
}

export interface EventsQuery extends TimeRange {
  filters?: UsageFilters | undefined;
  /** 1..1000, default 100. A page also ends before 16 MiB of text (captured content). */
  limit?: number | undefined;
  /** `next_cursor` of the previous page. */
  cursor?: string | undefined;
}

/** A stored call, as the HTTP API returns it. */
export interface UsageEvent {
  id: string;
  /** Start of the call, ISO 8601 (UTC). */
  time: string;
  end_time: string;
  trace_id: string | null;
  span_id: string | null;
  provider: string;
  operation: Operation;
  /** The reporting model: the request model, else the response model. */
  model: string | null;
  request_model: string | null;
  response_model: string | null;
  response_id: string | null;
  server_address: string | null;
  server_port: number | null;
  user: string | null;
  project: string | null;
  feature: string | null;
  tags: Record<string, string>;
  api_key_hash: string | null;
  stream: boolean;
  max_tokens: number | null;
  temperature: number | null;
  tool_count: number;
  /** Tool-call rounds already in the conversation when the call was made. */
  tool_rounds: number;
  outcome: Outcome;
  error_type: string | null;
  error_code: string | null;
  http_status: number | null;
  retryable: boolean | null;
  retry_after_ms: number | null;
  finish_reasons: string[];
  input_tokens: number | null;
  cached_input_tokens: number | null;
  cache_write_input_tokens: number | null;
  output_tokens: number | null;
  reasoning_tokens: number | null;
  /** `provider` or `estimated`; null when no usage is known. */
  tokens_source: 'provider' | 'estimated' | null;
  tool_calls: number;
  /** Tool calls whose arguments were not valid JSON. */
  invalid_tool_calls: number;
  chunks: number;
  cost_usd: number | null;
  input_cost_usd: number | null;
  cache_read_cost_usd: number | null;
  cache_write_cost_usd: number | null;
  output_cost_usd: number | null;
  cost_source: string | null;
  priced_as: string | null;
  input_tokens_estimate: number | null;
  projected_max_cost_usd: number | null;
  context_window: number | null;
  context_exceeded: boolean | null;
  duration_ms: number;
  headers_ms: number | null;
  ttft_ms: number | null;
  queue_ms: number | null;
  queue_source: string | null;
  prefill_ms: number | null;
  prefill_source: string | null;
  generation_ms: number | null;
  generation_source: string | null;
  output_tokens_per_second: number | null;
  server_processing_ms: number | null;
  /** Only when the meter ran with `captureContent: true`. */
  content: unknown;
}

export interface EventsPage {
  events: UsageEvent[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

export const METRICS = ['cost_usd', 'requests', 'input_tokens', 'output_tokens', 'errors'] as const;
export type TimeseriesMetric = (typeof METRICS)[number];

export interface TimeseriesQuery extends TimeRange {
  interval: TimeBucket;
  metric: TimeseriesMetric;
  groupBy?: readonly Dimension[] | undefined;
  filters?: UsageFilters | undefined;
  tz?: string | undefined;
  /**
   * Most series, 1..100 (default 20): past it, the series largest in `metric` are shown and the
   * rest are one series with `other: true`. A result has at most 10 000 buckets and 100 000
   * points (series × buckets); with many buckets the series are fewer.
   */
  limit?: number | undefined;
}

export interface TimeseriesPoint {
  /** Start of the bucket, ISO 8601 (UTC). */
  t: string;
  value: number | null;
}

export interface TimeseriesResult {
  interval: TimeBucket;
  metric: TimeseriesMetric;
  /** One series per group, largest total first; buckets without calls are 0. */
  series: Array<{
    key: Partial<Record<Dimension, string | null>>;
    points: TimeseriesPoint[];
    /** The series past `limit`, added up (last; its key's dimensions are null). */
    other?: true;
    /** How many series an `other` series adds up. */
    other_groups?: number;
  }>;
}

export interface PruneResult {
  /** Raw rows deleted. */
  deleted: number;
  /** Rows before this instant (rounded down to the hour) are gone; their rollups remain. */
  cutoffMs: number;
}

export interface StoreStats {
  /** Records committed (a duplicate id counts here too: it is stored, once). */
  written: number;
  /** Records whose id was already stored: ignored, not counted twice in reports. */
  duplicates: number;
  /** Commit attempts that failed (disk full, busy beyond the timeout, read-only...); retried. */
  failed: number;
  /** Records discarded: the pending queue overflowed, or written after close. */
  dropped: number;
  /**
   * Records refused and discarded, alone, while the rest of their batch committed: no identity
   * (id, provider, operation, outcome, a start time between 1970 and 9999), or a row a statement
   * failed on. Logged in `lastError`.
   */
  invalid: number;
  /**
   * Records stored with figures clamped: tokens above MAX_TOKENS, a cost above $1M, a duration
   * above 30 days, a negative, NaN or non-numeric figure. `lastError` names the columns.
   */
  clamped: number;
  /** Records waiting to be committed. */
  pending: number;
  lastError: { code: string; message: string; atMs: number } | null;
}

export interface UsageStore {
  /**
   * Enqueue one record. Never throws, never waits: records written in the same tick are
   * committed together before the event loop turns (see sqlite.ts for the durability promise).
   */
  write(record: CallRecord): void;
  /** Resolves when everything written so far is committed; rejects if it cannot be. */
  flush(): Promise<void>;
  /** Flush, then release the database. Writes after close are dropped (and counted). */
  close(): Promise<void>;
  summary(query: SummaryQuery): Promise<SummaryResult>;
  /** Newest first; the cursor is stable under concurrent inserts of newer calls. */
  events(query: EventsQuery): Promise<EventsPage>;
  /** Every matching event, newest first, a page at a time (for CSV export of any size). */
  eventsIterator(query: Omit<EventsQuery, 'limit' | 'cursor'>): AsyncIterable<UsageEvent>;
  timeseries(query: TimeseriesQuery): Promise<TimeseriesResult>;
  /** Delete raw rows older than `olderThanMs` before now; rollups (and so summaries) remain. */
  prune(olderThanMs: number): Promise<PruneResult>;
  /** True when the database answers. */
  ping(): Promise<boolean>;
  stats(): StoreStats;
}
