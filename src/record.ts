/**
 * The CallRecord: one normalized fact about one LLM API call.
 *
 * Adapters (src/providers) produce the wire-format half of it, the fetch wrapper adds timing
 * and outcome, and every sink (telemetry, store, budgets) consumes it. Nothing else crosses
 * between those layers, so this file imports nothing.
 *
 * Units are in the names: `...Ms` are milliseconds, `...Nanos` are nano-dollars (1e-9 USD,
 * integers so that money adds up exactly), token counts are integers.
 */

/** How a call ended. A caller's abort is an outcome, not an error. */
export type Outcome = 'ok' | 'error' | 'cancelled' | 'blocked';

/** Where a figure came from. */
export type FigureSource = 'provider' | 'observed' | 'estimated';

/**
 * The documented set of `error.type` values. Low cardinality on purpose: never a message.
 * See src/errors/classify.ts for the mapping and the retryable flag.
 */
export const ERROR_TYPES = [
  'rate_limited',
  'overloaded',
  'server_error',
  'invalid_request',
  'context_length_exceeded',
  'auth',
  'not_found',
  'content_filter',
  'timeout',
  'network',
  'stream_interrupted',
  'budget_exceeded',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

/** `gen_ai.operation.name` values used by llm-meter (GenAI semantic conventions). */
export type Operation = 'chat' | 'text_completion' | 'embeddings' | 'generate_content' | 'count_tokens';

/** Token figures, normalized the way the GenAI semantic conventions count them. */
export interface TokenUsage {
  /** All input tokens, cache reads and cache writes included. */
  inputTokens: number;
  /** Output tokens, reasoning included. */
  outputTokens: number;
  /** Input tokens read from the provider's prompt cache (a subset of inputTokens). */
  cacheReadTokens: number;
  /** Input tokens written to the provider's prompt cache (a subset of inputTokens). */
  cacheWriteTokens: number;
  /** Reasoning ("thinking") tokens (a subset of outputTokens). */
  reasoningTokens: number;
  /**
   * `provider`: the response said so; `estimated`: counted by llm-meter's tokenizer, or the
   * provider's figures changed to keep them within bounds (see `clamped`).
   */
  source: 'provider' | 'estimated';
  /**
   * Figures that were out of bounds (over MAX_TOKENS, negative, not whole, a part larger than
   * its whole) and were clamped; absent when none was. See src/usage.ts.
   */
  clamped?: TokenFigure[];
  /**
   * Bytes of the response too large to parse (a stream event over the parser's cap, a body over
   * `maxResponseBodyBytes`); absent when everything was read. The usage is then `estimated`, and
   * the output counts these bytes too when the provider's final figures were not read.
   */
  unreadBytes?: number;
}

/** The token figures of a TokenUsage. */
export type TokenFigure =
  | 'inputTokens'
  | 'outputTokens'
  | 'cacheReadTokens'
  | 'cacheWriteTokens'
  | 'reasoningTokens';

/** What the request said, read without consuming it. */
export interface RequestInfo {
  /**
   * False when the body could not be read (not JSON, a stream, FormData, over the size cap), or a
   * field llm-meter reads (model, stream, max tokens, choices, the input) has a type the wire
   * format does not take: the figures below are then not to be trusted, and a blocking budget
   * refuses the call (its cost cannot be bounded).
   */
  parsed: boolean;
  model: string | null;
  stream: boolean;
  maxTokens: number | null;
  temperature: number | null;
  /** Number of choices asked for (`n`, `candidateCount`). */
  choices: number | null;
  toolCount: number;
  /**
   * Tool-call rounds already in the conversation (assistant turns that called tools): how deep
   * an agent loop is when it makes this call.
   */
  toolRounds: number;
}

/** A latency component and where its figure came from. */
export interface TimingComponent {
  ms: number;
  source: FigureSource;
}

/** Timestamps are epoch milliseconds (fractional); durations are milliseconds. */
export interface CallTiming {
  startMs: number;
  /** Response headers received. */
  headersMs: number | null;
  /** First content or tool-call delta (streams); the whole body for non-streaming responses. */
  firstTokenMs: number | null;
  lastTokenMs: number | null;
  endMs: number;
  durationMs: number;
  timeToFirstTokenMs: number | null;
  generationMs: number | null;
  outputTokensPerSecond: number | null;
  queue: TimingComponent | null;
  prefill: TimingComponent | null;
  generation: TimingComponent | null;
  /** Time the provider says it spent processing (e.g. `openai-processing-ms`). */
  serverProcessingMs: number | null;
}

/** Cost of one call. All money in integer nano-dollars. */
export interface CallCost {
  /** null when the model has no known price: unknown, never 0. */
  totalNanos: number | null;
  inputNanos: number | null;
  cacheReadNanos: number | null;
  cacheWriteNanos: number | null;
  outputNanos: number | null;
  /** `override`: a user-supplied price; `catalog`: the pricing data package. null when unpriced. */
  source: 'override' | 'catalog' | null;
  /** The model name the price was found under. */
  pricedAs: string | null;
}

export interface Attribution {
  user?: string | undefined;
  project?: string | undefined;
  feature?: string | undefined;
  tags: Record<string, string>;
  /** Short salted hash of the API key, for a per-key breakdown. Never the key itself. */
  apiKeyHash?: string | undefined;
}

export interface RateLimitInfo {
  remainingRequests: number | null;
  remainingTokens: number | null;
  limitRequests: number | null;
  limitTokens: number | null;
  /** Milliseconds until the token limit resets, when the provider says so. */
  resetTokensMs: number | null;
}

export interface PreflightInfo {
  /** Input tokens estimated with the model family's tokenizer, when something needed the count. */
  inputTokensEstimate: number | null;
  /** Projected maximum cost: input estimate plus maximum output, in nano-dollars. */
  projectedMaxCostNanos: number | null;
  contextWindow: number | null;
  /** true/false when checked against a known context window; null when not checked. */
  contextExceeded: boolean | null;
}

export interface CallRecord {
  /** Unique id of this call (also the store's primary key). */
  id: string;
  traceId: string | null;
  spanId: string | null;
  /** `gen_ai.provider.name`: openai, anthropic, azure.ai.openai, groq, gcp.gemini, ... */
  provider: string;
  operation: Operation;
  requestModel: string | null;
  responseModel: string | null;
  responseId: string | null;
  serverAddress: string | null;
  serverPort: number | null;
  request: RequestInfo;
  attribution: Attribution;
  outcome: Outcome;
  errorType: ErrorType | null;
  /** Provider's own error code or type, for diagnosis (bounded length). */
  errorCode: string | null;
  retryable: boolean | null;
  retryAfterMs: number | null;
  httpStatus: number | null;
  rateLimit: RateLimitInfo | null;
  finishReasons: string[];
  /** null when no usage is known at all (e.g. a network error before any response). */
  usage: TokenUsage | null;
  toolCalls: number;
  /** Tool calls whose arguments are not valid JSON (cut short, or formatted unexpectedly). */
  invalidToolCalls: number;
  preflight: PreflightInfo;
  cost: CallCost;
  timing: CallTiming;
  /** Number of stream events seen (chunks at the SSE/NDJSON level), 0 when not streamed. */
  chunks: number;
  /** Only present with `captureContent: true`. */
  content?: { input?: unknown; output?: string };
}

export const NANOS_PER_USD = 1_000_000_000;

/**
 * The largest token figure llm-meter believes from the wire, per figure (input, output, cache
 * reads, ...). No model today has a context window within two orders of magnitude of it, and it
 * keeps every figure, and the cost computed from it, far inside an SQLite INTEGER (2^63).
 * A larger figure is clamped to it and the usage marked as not the provider's (see src/usage.ts).
 */
export const MAX_TOKENS = 100_000_000;

/**
 * The longest wait a provider's Retry-After is believed for (a record's `retryAfterMs`): a
 * monthly quota resets within 31 days. The assembler bounds it; the store keeps it as it is.
 */
export const MAX_RETRY_AFTER_MS = 31 * 24 * 3_600_000;

export function nanosToUsd(nanos: number | null): number | null {
  return nanos === null ? null : nanos / NANOS_PER_USD;
}

/**
 * The prompt of a request body, for `captureContent`: chat `messages`, Responses `input`,
 * Gemini `contents`, or a completion's `prompt`.
 */
export function promptOf(body: Record<string, unknown> | null): unknown {
  return body ? (body.messages ?? body.input ?? body.contents ?? body.prompt) : undefined;
}
