/**
 * The one mapping between a CallRecord and a `usage` row, both ways.
 *
 * Writing is defensive: a non-finite number becomes NULL rather than failing the batch, and
 * only a record without its identity (id, provider, operation, outcome, start time) is refused.
 */
import { type CallRecord, nanosToUsd, type Operation, type Outcome } from '../record.js';
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
export type UsageRow = Record<UsageColumn, string | number | null>;

/** A record the store cannot identify; it is counted as invalid and discarded. */
export class InvalidRecordError extends Error {
  override name = 'InvalidRecordError' as const;
}

const int = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : null;
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

export function toUsageRow(record: CallRecord): UsageRow {
  const timing = record.timing;
  const startMs = real(timing?.startMs);
  if (startMs === null) throw new InvalidRecordError('CallRecord without `timing.startMs`.');
  const endMs = real(timing.endMs) ?? startMs + (real(timing.durationMs) ?? 0);
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
    server_port: int(record.serverPort),
    user: label(attribution?.user),
    project: label(attribution?.project),
    feature: label(attribution?.feature),
    tags: json(attribution?.tags ?? {}) ?? '{}',
    api_key_hash: text(attribution?.apiKeyHash),
    stream: request?.stream === true ? 1 : 0,
    max_tokens: int(request?.maxTokens),
    temperature: real(request?.temperature),
    tool_count: int(request?.toolCount) ?? 0,
    tool_rounds: int(request?.toolRounds) ?? 0,
    outcome: required(record.outcome, 'outcome'),
    error_type: text(record.errorType),
    error_code: text(record.errorCode),
    http_status: int(record.httpStatus),
    retryable: flag(record.retryable),
    retry_after_ms: int(record.retryAfterMs),
    finish_reasons: json(Array.isArray(record.finishReasons) ? record.finishReasons : []) ?? '[]',
    input_tokens: int(usage?.inputTokens),
    cached_input_tokens: int(usage?.cacheReadTokens),
    cache_write_input_tokens: int(usage?.cacheWriteTokens),
    output_tokens: int(usage?.outputTokens),
    reasoning_tokens: int(usage?.reasoningTokens),
    tokens_estimated: usage ? flag(usage.source === 'estimated') : null,
    tool_calls: int(record.toolCalls) ?? 0,
    invalid_tool_calls: int(record.invalidToolCalls) ?? 0,
    chunks: int(record.chunks) ?? 0,
    cost_nanos: int(cost?.totalNanos),
    input_cost_nanos: int(cost?.inputNanos),
    cache_read_cost_nanos: int(cost?.cacheReadNanos),
    cache_write_cost_nanos: int(cost?.cacheWriteNanos),
    output_cost_nanos: int(cost?.outputNanos),
    cost_source: text(cost?.source),
    priced_as: text(cost?.pricedAs),
    input_tokens_estimate: int(preflight?.inputTokensEstimate),
    projected_max_cost_nanos: int(preflight?.projectedMaxCostNanos),
    context_window: int(preflight?.contextWindow),
    context_exceeded: flag(preflight?.contextExceeded),
    duration_ms: real(timing.durationMs) ?? Math.max(0, endMs - startMs),
    headers_ms: since(timing.headersMs, startMs),
    ttft_ms: real(timing.timeToFirstTokenMs),
    queue_ms: real(timing.queue?.ms),
    queue_source: text(timing.queue?.source),
    prefill_ms: real(timing.prefill?.ms),
    prefill_source: text(timing.prefill?.source),
    generation_ms: real(timing.generation?.ms) ?? real(timing.generationMs),
    generation_source:
      text(timing.generation?.source) ?? (real(timing.generationMs) === null ? null : 'observed'),
    output_tokens_per_second: real(timing.outputTokensPerSecond),
    server_processing_ms: real(timing.serverProcessingMs),
    rate_limit: json(record.rateLimit),
    content: json(record.content),
  };
}

/** The row's values in USAGE_COLUMNS order. */
export function rowValues(row: UsageRow): Array<string | number | null> {
  const values = new Array<string | number | null>(USAGE_COLUMNS.length);
  for (let i = 0; i < USAGE_COLUMNS.length; i++) values[i] = row[USAGE_COLUMNS[i]!];
  return values;
}

function parseJson<T>(value: unknown, fallback: T): T {
  if (typeof value !== 'string') return fallback;
  try {
    return JSON.parse(value) as T;
  } catch {
    return fallback;
  }
}

const bool = (value: unknown): boolean | null => (value === 1 ? true : value === 0 ? false : null);
const usd = (value: unknown): number | null => nanosToUsd(typeof value === 'number' ? value : null);

type Stored = Record<string, unknown>;

export function toUsageEvent(row: Stored): UsageEvent {
  const n = (column: string) => (typeof row[column] === 'number' ? (row[column] as number) : null);
  const s = (column: string) => (typeof row[column] === 'string' ? (row[column] as string) : null);
  const tokensEstimated = bool(row['tokens_estimated']);
  return {
    id: s('id')!,
    time: new Date(n('time_ms')!).toISOString(),
    end_time: new Date(n('end_ms')!).toISOString(),
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
