/**
 * The one mapping between a CallRecord and a `usage` row, both ways.
 *
 * Writing is defensive: every number is bounded, so no record can make a statement fail or
 * push a rollup's sums toward 64-bit overflow. A figure that is not a number, NaN, negative or
 * above its bound (tokens above MAX_TOKENS, a cost above MAX_COST_NANOS, a duration above
 * MAX_DURATION_MS, a retry wait above MAX_RETRY_AFTER_MS) is stored clamped (NaN and non-numbers as NULL) and its column is named in
 * `clamped`. Only a record without its identity (id, provider, operation, outcome, a start time
 * between 1970 and 9999) is refused.
 */
import { InvalidRecordError } from '../errors/errors.js';
import {
  type CallRecord,
  MAX_RETRY_AFTER_MS,
  MAX_TOKENS,
  nanosToUsd,
  type Operation,
  type Outcome,
} from '../record.js';
import type { UsageEvent } from './types.js';

export const USAGE_COLUMNS = [
  'id',
  'time_ms',
  'end_ms',
  'trace_id',
  'span_id',
  'provider',
  'operation',
  'model',
  'request_model',
  'response_model',
  'response_id',
  'server_address',
  'server_port',
  'user',
  'project',
  'feature',
  'tags',
  'api_key_hash',
  'stream',
  'max_tokens',
  'temperature',
  'tool_count',
  'tool_rounds',
  'outcome',
  'error_type',
  'error_code',
  'http_status',
  'retryable',
  'retry_after_ms',
  'finish_reasons',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'tokens_estimated',
  'tool_calls',
  'invalid_tool_calls',
  'chunks',
  'cost_nanos',
  'input_cost_nanos',
  'cache_read_cost_nanos',
  'cache_write_cost_nanos',
  'output_cost_nanos',
  'cost_source',
  'priced_as',
  'input_tokens_estimate',
  'projected_max_cost_nanos',
  'context_window',
  'context_exceeded',
  'duration_ms',
  'headers_ms',
  'ttft_ms',
  'queue_ms',
  'queue_source',
  'prefill_ms',
  'prefill_source',
  'generation_ms',
  'generation_source',
  'output_tokens_per_second',
  'server_processing_ms',
  'rate_limit',
  'content',
] as const;

export type UsageColumn = (typeof USAGE_COLUMNS)[number];

/** Inserts one row, its values in USAGE_COLUMNS order; an id already stored is skipped (changes 0). */
export const INSERT_USAGE_SQL =
  `INSERT INTO usage (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')}) ` +
  'ON CONFLICT (id) DO NOTHING';
export type UsageRow = Record<UsageColumn, string | number | null>;

/** Most one call can cost: a million dollars (1e8 tokens at today's dearest price is $60 000). */
export const MAX_COST_NANOS = 1e15;
/** Longest duration or latency component kept: 30 days. */
export const MAX_DURATION_MS = 30 * 86_400_000;
/** Largest count that is not a token figure (chunks, tool calls): exact as a JS number. */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;
/** Start times outside 1970..9999 cannot be labelled by reports (four-digit years). */
const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const real = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null;
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const label = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);
const flag = (value: unknown): number | null => (value === true ? 1 : value === false ? 0 : null);
const since = (value: unknown, start: number): number | null => {
  const ms = real(value);
  return ms === null ? null : ms - start;
};

function json(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  try {
    return JSON.stringify(value) ?? null;
  } catch {
    return null;
  }
}

function required(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '')
    throw new InvalidRecordError(`CallRecord without \`${field}\`.`);
  return value;
}

/**
 * `value` within [0, max] (rounded when `integer`); null when absent. Anything else (not a
 * number, NaN, negative, above max) is clamped and its column pushed onto `clamped`.
 */
function bounded(
  value: unknown,
  max: number,
  column: UsageColumn,
  clamped: string[],
  integer = true,
): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    clamped.push(column);
    return null;
  }
  const n = integer ? Math.round(value) : value;
  if (n >= 0 && n <= max) return n;
  clamped.push(column);
  return n < 0 ? 0 : max;
}

/**
 * The row for a record. Throws InvalidRecordError for a record without its identity; pushes
 * the columns whose figures it had to clamp onto `clamped`. Its keys are in USAGE_COLUMNS order
 * (rowValues relies on it).
 */
export function toUsageRow(record: CallRecord, clamped: string[] = []): UsageRow {
  const timing = record.timing;
  const startMs = real(timing?.startMs);
  if (startMs === null || startMs < 0 || startMs > MAX_TIME_MS) {
    throw new InvalidRecordError('CallRecord without a `timing.startMs` between 1970 and 9999.');
  }
  const tokens = (value: unknown, column: UsageColumn) => bounded(value, MAX_TOKENS, column, clamped);
  const nanos = (value: unknown, column: UsageColumn) => bounded(value, MAX_COST_NANOS, column, clamped);
  const count = (value: unknown, column: UsageColumn) => bounded(value, MAX_COUNT, column, clamped);
  const ms = (value: unknown, column: UsageColumn) => bounded(value, MAX_DURATION_MS, column, clamped, false);
  const endMs = Math.min(
    Math.max(real(timing.endMs) ?? startMs + (real(timing.durationMs) ?? 0), startMs),
    startMs + MAX_DURATION_MS,
    MAX_TIME_MS,
  );
  const usage = record.usage;
  const cost = record.cost;
  const attribution = record.attribution;
  const request = record.request;
  const preflight = record.preflight;
  const requestModel = label(record.requestModel);
  const responseModel = label(record.responseModel);
  return {
    id: required(record.id, 'id'),
    time_ms: Math.floor(startMs),
    end_ms: Math.floor(endMs),
    trace_id: text(record.traceId),
    span_id: text(record.spanId),
    provider: required(record.provider, 'provider'),
    operation: required(record.operation, 'operation'),
    model: requestModel ?? responseModel ?? '',
    request_model: requestModel,
    response_model: responseModel,
    response_id: text(record.responseId),
    server_address: text(record.serverAddress),
    server_port: bounded(record.serverPort, 65_535, 'server_port', clamped),
    user: label(attribution?.user),
    project: label(attribution?.project),
    feature: label(attribution?.feature),
    tags: json(attribution?.tags ?? {}) ?? '{}',
    api_key_hash: text(attribution?.apiKeyHash),
    stream: request?.stream === true ? 1 : 0,
    max_tokens: tokens(request?.maxTokens, 'max_tokens'),
    temperature: real(request?.temperature),
    tool_count: count(request?.toolCount, 'tool_count') ?? 0,
    tool_rounds: count(request?.toolRounds, 'tool_rounds') ?? 0,
    outcome: required(record.outcome, 'outcome'),
    error_type: text(record.errorType),
    error_code: text(record.errorCode),
    http_status: bounded(record.httpStatus, 999, 'http_status', clamped),
    retryable: flag(record.retryable),
    retry_after_ms: bounded(record.retryAfterMs, MAX_RETRY_AFTER_MS, 'retry_after_ms', clamped),
    finish_reasons: json(Array.isArray(record.finishReasons) ? record.finishReasons : []) ?? '[]',
    input_tokens: tokens(usage?.inputTokens, 'input_tokens'),
    cached_input_tokens: tokens(usage?.cacheReadTokens, 'cached_input_tokens'),
    cache_write_input_tokens: tokens(usage?.cacheWriteTokens, 'cache_write_input_tokens'),
    output_tokens: tokens(usage?.outputTokens, 'output_tokens'),
    reasoning_tokens: tokens(usage?.reasoningTokens, 'reasoning_tokens'),
    tokens_estimated: usage ? flag(usage.source === 'estimated') : null,
    tool_calls: count(record.toolCalls, 'tool_calls') ?? 0,
    invalid_tool_calls: count(record.invalidToolCalls, 'invalid_tool_calls') ?? 0,
    chunks: count(record.chunks, 'chunks') ?? 0,
    cost_nanos: nanos(cost?.totalNanos, 'cost_nanos'),
    input_cost_nanos: nanos(cost?.inputNanos, 'input_cost_nanos'),
    cache_read_cost_nanos: nanos(cost?.cacheReadNanos, 'cache_read_cost_nanos'),
    cache_write_cost_nanos: nanos(cost?.cacheWriteNanos, 'cache_write_cost_nanos'),
    output_cost_nanos: nanos(cost?.outputNanos, 'output_cost_nanos'),
    cost_source: text(cost?.source),
    priced_as: text(cost?.pricedAs),
    input_tokens_estimate: tokens(preflight?.inputTokensEstimate, 'input_tokens_estimate'),
    projected_max_cost_nanos: nanos(preflight?.projectedMaxCostNanos, 'projected_max_cost_nanos'),
    context_window: tokens(preflight?.contextWindow, 'context_window'),
    context_exceeded: flag(preflight?.contextExceeded),
    duration_ms: ms(timing.durationMs, 'duration_ms') ?? endMs - startMs,
    headers_ms: ms(since(timing.headersMs, startMs), 'headers_ms'),
    ttft_ms: ms(timing.timeToFirstTokenMs, 'ttft_ms'),
    queue_ms: ms(timing.queue?.ms, 'queue_ms'),
    queue_source: text(timing.queue?.source),
    prefill_ms: ms(timing.prefill?.ms, 'prefill_ms'),
    prefill_source: text(timing.prefill?.source),
    generation_ms: ms(timing.generation?.ms ?? timing.generationMs, 'generation_ms'),
    generation_source:
      text(timing.generation?.source) ?? (real(timing.generationMs) === null ? null : 'observed'),
    output_tokens_per_second: real(timing.outputTokensPerSecond),
    server_processing_ms: ms(timing.serverProcessingMs, 'server_processing_ms'),
    rate_limit: json(record.rateLimit),
    content: json(record.content),
  };
}

/**
 * The row's values in USAGE_COLUMNS order. toUsageRow and rowFromValues build every row with its
 * keys in that order (test/store/writer.test.ts checks it), and Object.values keeps the order
 * of insertion: a quarter of the cost of reading 63 keys by name, on the caller's event loop.
 */
export function rowValues(row: UsageRow): Array<string | number | null> {
  return Object.values(row);
}

/** The row of values in USAGE_COLUMNS order (a journal line, parsed). */
export function rowFromValues(values: readonly unknown[]): UsageRow {
  const row = {} as Record<string, string | number | null>;
  for (let i = 0; i < USAGE_COLUMNS.length; i++)
    row[USAGE_COLUMNS[i]!] = (values[i] ?? null) as string | number | null;
  return row as UsageRow;
}

function parseJson<T>(value: unknown, fallback: T): T {
  if (typeof value !== 'string') return fallback;
  try {
    return JSON.parse(value) as T;
  } catch {
    return fallback;
  }
}

/** Date's own range; a row an older version wrote may lie outside it. */
const MAX_DATE_MS = 8.64e15;
const iso = (ms: number | null): string =>
  new Date(Math.min(MAX_DATE_MS, Math.max(-MAX_DATE_MS, ms ?? 0))).toISOString();

const bool = (value: unknown): boolean | null => (value === 1 ? true : value === 0 ? false : null);
const usd = (value: unknown): number | null => nanosToUsd(typeof value === 'number' ? value : null);

type Stored = Record<string, unknown>;

export function toUsageEvent(row: Stored): UsageEvent {
  const n = (column: string) => (typeof row[column] === 'number' ? (row[column] as number) : null);
  const s = (column: string) => (typeof row[column] === 'string' ? (row[column] as string) : null);
  const tokensEstimated = bool(row['tokens_estimated']);
  return {
    id: s('id')!,
    time: iso(n('time_ms')),
    end_time: iso(n('end_ms')),
    trace_id: s('trace_id'),
    span_id: s('span_id'),
    provider: s('provider')!,
    operation: s('operation') as Operation,
    model: s('model') || null,
    request_model: s('request_model'),
    response_model: s('response_model'),
    response_id: s('response_id'),
    server_address: s('server_address'),
    server_port: n('server_port'),
    user: s('user'),
    project: s('project'),
    feature: s('feature'),
    tags: parseJson(row['tags'], {}),
    api_key_hash: s('api_key_hash'),
    stream: row['stream'] === 1,
    max_tokens: n('max_tokens'),
    temperature: n('temperature'),
    tool_count: n('tool_count') ?? 0,
    tool_rounds: n('tool_rounds') ?? 0,
    outcome: s('outcome') as Outcome,
    error_type: s('error_type'),
    error_code: s('error_code'),
    http_status: n('http_status'),
    retryable: bool(row['retryable']),
    retry_after_ms: n('retry_after_ms'),
    finish_reasons: parseJson(row['finish_reasons'], []),
    input_tokens: n('input_tokens'),
    cached_input_tokens: n('cached_input_tokens'),
    cache_write_input_tokens: n('cache_write_input_tokens'),
    output_tokens: n('output_tokens'),
    reasoning_tokens: n('reasoning_tokens'),
    tokens_source: tokensEstimated === null ? null : tokensEstimated ? 'estimated' : 'provider',
    tool_calls: n('tool_calls') ?? 0,
    invalid_tool_calls: n('invalid_tool_calls') ?? 0,
    chunks: n('chunks') ?? 0,
    cost_usd: usd(row['cost_nanos']),
    input_cost_usd: usd(row['input_cost_nanos']),
    cache_read_cost_usd: usd(row['cache_read_cost_nanos']),
    cache_write_cost_usd: usd(row['cache_write_cost_nanos']),
    output_cost_usd: usd(row['output_cost_nanos']),
    cost_source: s('cost_source'),
    priced_as: s('priced_as'),
    input_tokens_estimate: n('input_tokens_estimate'),
    projected_max_cost_usd: usd(row['projected_max_cost_nanos']),
    context_window: n('context_window'),
    context_exceeded: bool(row['context_exceeded']),
    duration_ms: n('duration_ms') ?? 0,
    headers_ms: n('headers_ms'),
    ttft_ms: n('ttft_ms'),
    queue_ms: n('queue_ms'),
    queue_source: s('queue_source'),
    prefill_ms: n('prefill_ms'),
    prefill_source: s('prefill_source'),
    generation_ms: n('generation_ms'),
    generation_source: s('generation_source'),
    output_tokens_per_second: n('output_tokens_per_second'),
    server_processing_ms: n('server_processing_ms'),
    content: parseJson(row['content'], null),
  };
}
