/**
 * Attribute and metric names of the GenAI semantic conventions, which are still in
 * development (https://opentelemetry.io/docs/specs/semconv/gen-ai/). Kept here, in one file,
 * rather than imported from the incubating entry point, so a rename is one edit.
 * Stable names (server.*, error.type) come from @opentelemetry/semantic-conventions.
 *
 * This file names what is said about a call (spans and the per-call metrics of metrics.ts).
 * The figures a source reports at scrape time (the meter's own counters, the store, the
 * budgets, the gateway) are named beside their registration, in ./instruments/<source>.ts.
 */
export const GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
export const GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens';
export const GEN_AI_REQUEST_TEMPERATURE = 'gen_ai.request.temperature';
export const GEN_AI_REQUEST_CHOICE_COUNT = 'gen_ai.request.choice.count';
export const GEN_AI_REQUEST_STREAM = 'gen_ai.request.stream';
export const GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const GEN_AI_RESPONSE_ID = 'gen_ai.response.id';
export const GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons';
export const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = 'gen_ai.response.time_to_first_chunk';
export const GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = 'gen_ai.usage.cache_read.input_tokens';
export const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = 'gen_ai.usage.cache_creation.input_tokens';
export const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = 'gen_ai.usage.reasoning.output_tokens';
/** Cost in USD: the name OpenLIT emits and Langfuse reads. */
export const GEN_AI_USAGE_COST = 'gen_ai.usage.cost';
export const GEN_AI_TOKEN_TYPE = 'gen_ai.token.type';
export const GEN_AI_INPUT_MESSAGES = 'gen_ai.input.messages';
export const GEN_AI_OUTPUT_MESSAGES = 'gen_ai.output.messages';

export const METRIC_TOKEN_USAGE = 'gen_ai.client.token.usage';
export const METRIC_OPERATION_DURATION = 'gen_ai.client.operation.duration';
export const METRIC_TIME_TO_FIRST_CHUNK = 'gen_ai.client.operation.time_to_first_chunk';
export const METRIC_TIME_PER_OUTPUT_CHUNK = 'gen_ai.client.operation.time_per_output_chunk';
export const METRIC_COST = 'llm_meter.cost';
export const METRIC_CALLS = 'llm_meter.calls';
export const METRIC_TOOL_CALLS = 'llm_meter.tool_calls';

/** Explicit bucket advice from the GenAI metrics conventions. */
export const TOKEN_BUCKETS = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
export const DURATION_BUCKETS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
export const CHUNK_BUCKETS = [0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5];

/** The instrumentation scope of llm-meter's tracer and meter. */
export const SCOPE = { name: 'llm-meter', version: '0.1.0' } as const;

/** llm-meter's own figures. */
export const LLM_METER = {
  outcome: 'llm_meter.outcome',
  callId: 'llm_meter.call.id',
  costInput: 'llm_meter.cost.input_usd',
  costCacheRead: 'llm_meter.cost.cache_read_usd',
  costCacheWrite: 'llm_meter.cost.cache_write_usd',
  costOutput: 'llm_meter.cost.output_usd',
  costSource: 'llm_meter.cost.source',
  pricedAs: 'llm_meter.cost.priced_as',
  unpriced: 'llm_meter.cost.unpriced',
  usageSource: 'llm_meter.usage.source',
  toolCalls: 'llm_meter.response.tool_calls',
  invalidToolCalls: 'llm_meter.response.tool_calls.invalid',
  toolCount: 'llm_meter.request.tools',
  toolRounds: 'llm_meter.request.tool_rounds',
  toolCallValid: 'llm_meter.tool_call.valid',
  requestParsed: 'llm_meter.request.parsed',
  inputEstimate: 'llm_meter.preflight.input_tokens',
  projectedCost: 'llm_meter.preflight.projected_max_cost_usd',
  contextWindow: 'llm_meter.preflight.context_window',
  contextExceeded: 'llm_meter.preflight.context_exceeded',
  retryable: 'llm_meter.error.retryable',
  errorCode: 'llm_meter.error.code',
  retryAfterMs: 'llm_meter.retry_after_ms',
  remainingRequests: 'llm_meter.ratelimit.remaining_requests',
  remainingTokens: 'llm_meter.ratelimit.remaining_tokens',
  resetTokensMs: 'llm_meter.ratelimit.reset_tokens_ms',
  ttftMs: 'llm_meter.time_to_first_token_ms',
  generationMs: 'llm_meter.generation_ms',
  tokensPerSecond: 'llm_meter.output_tokens_per_second',
  queueMs: 'llm_meter.queue_ms',
  queueSource: 'llm_meter.queue.source',
  prefillMs: 'llm_meter.prefill_ms',
  prefillSource: 'llm_meter.prefill.source',
  generationSource: 'llm_meter.generation.source',
  serverProcessingMs: 'llm_meter.server_processing_ms',
  chunks: 'llm_meter.stream.chunks',
  user: 'llm_meter.user',
  project: 'llm_meter.project',
  feature: 'llm_meter.feature',
  tagPrefix: 'llm_meter.tag.',
  apiKeyHash: 'llm_meter.api_key_hash',
  componentSource: 'llm_meter.source',
} as const;
