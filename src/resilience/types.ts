import type { AttributionInput } from '../attribution.js';
import type { FetchInput } from '../fetch/request.js';
import type { CallRecord } from '../record.js';
import type { BodyShape } from '../tokens/index.js';

// --- retry ------------------------------------------------------------------------------------

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 3 (the official SDKs' default of 2 retries). */
  maxAttempts?: number;
  /** Ceiling of the first retry's backoff; doubles per retry. Default 500 ms. */
  baseDelayMs?: number;
  /** Ceiling of any backoff. Default 8,000 ms. */
  maxDelayMs?: number;
  /** Cap on the whole call, attempts and waits included: no wait starts that would end past it. Default 60,000 ms. */
  maxElapsedMs?: number;
  /** Longest `retry-after` honoured; a longer one ends the retries. Default 60,000 ms. */
  maxRetryAfterMs?: number;
  /**
   * Retry timeouts that happened after the request was sent (and 504s). The provider may have
   * finished and billed the first attempt, so a retry may pay twice. Default false.
   */
  retryTimeouts?: boolean;
  /** Tag each attempt (`retry_group`, `retry_attempt`) through this meter's `run`. */
  meter?: { run<T>(attribution: AttributionInput, fn: () => T): T };
  /** Called before each wait. Errors are ignored. */
  onRetry?: (event: RetryEvent) => void;
  /** Wall clock (ms); `retry-after` HTTP dates are compared against it. Default Date.now. */
  now?: () => number;
  /** In [0, 1). Default Math.random. */
  random?: () => number;
  /** Default: an abortable setTimeout. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Id shared by the attempts of one call. Default randomUUID. */
  newId?: () => string;
}

export interface RetryEvent {
  group: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  delayMs: number;
  /** `server`: the provider's retry-after; `backoff`: exponential backoff with full jitter. */
  delaySource: 'server' | 'backoff';
  status: number | null;
  cause: 'ok' | 'status' | 'network' | 'timeout' | 'aborted' | 'circuit_open' | 'not_retryable';
  error: unknown;
}

// --- circuit breaker --------------------------------------------------------------------------

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Failures within `windowMs` that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Default 60,000 ms. */
  windowMs?: number;
  /** How long an open circuit fails fast before letting a probe through. Default 30,000 ms. */
  openMs?: number;
  /** Concurrent probes allowed while half-open. Default 1. */
  halfOpenProbes?: number;
  /** Monotonic clock (ms). Default performance.now. */
  now?: () => number;
  /** Every transition, for metrics, logs or a dashboard. Errors are ignored. */
  onStateChange?: (change: CircuitChange) => void;
}

export interface CircuitChange {
  key: string;
  from: CircuitState;
  to: CircuitState;
  /** Failures counted in the window when it happened. */
  failures: number;
}

export interface CircuitSnapshot {
  state: CircuitState;
  failures: number;
  /** When an open circuit lets a probe through, in ms from now; 0 when not open. */
  retryAfterMs: number;
}

export interface CircuitFetchOptions {
  /** Default: `{provider}/{model}` of the call; calls that are not LLM calls pass through. */
  keyOf?: (input: FetchInput, init: RequestInit | undefined) => string | null;
  /**
   * `throw` (default): a CircuitOpenError. `respond`: a 503 in the provider's error shape with
   * `x-should-retry: false`, which the SDKs raise without retrying (a thrown fetch error is a
   * connection error to them, and they retry those).
   */
  onOpen?: 'throw' | 'respond';
}

// --- rate limiter -----------------------------------------------------------------------------

export interface RateLimiterOptions {
  /**
   * `queue` (default): wait for capacity up to `maxWaitMs`, then refuse. `reject`: refuse at
   * once when the provider's remaining budget cannot take the call.
   */
  mode?: 'queue' | 'reject';
  /** Longest wait in the queue. Default 30,000 ms. */
  maxWaitMs?: number;
  /** Calls waiting at most; more are refused at once. Default 1,000. */
  maxQueue?: number;
  /**
   * Tokens a call takes from the tokens-per-minute budget. Default: the tokenizer's input
   * estimate plus the request's max output tokens (how OpenAI counts a request against TPM).
   */
  estimateTokens?: (input: FetchInput, init: RequestInit | undefined) => number | Promise<number>;
  /** Which budget a call draws on. Default: the upstream origin plus a hash of the API key. */
  keyOf?: (input: FetchInput, init: RequestInit | undefined) => string;
  /** Wait used after a 429 that names none. Default 1,000 ms. */
  defaultRetryAfterMs?: number;
  /**
   * Added to every reset time and retry-after the provider reports: they are rounded (OpenAI
   * writes "1s") and the clocks are not the provider's. Default 25 ms.
   */
  marginMs?: number;
  /** Monotonic clock (ms). Default performance.now. */
  now?: () => number;
  /** Default setTimeout. */
  setTimer?: (fn: () => void, ms: number) => () => void;
}

export interface RateLimiterSnapshot {
  remainingRequests: number | null;
  remainingTokens: number | null;
  inFlight: number;
  queued: number;
  /** 429s the provider answered through this limiter. */
  rateLimited: number;
  /** Calls the limiter refused itself. */
  refused: number;
}

// --- context window ---------------------------------------------------------------------------

export type FitStrategy = 'drop-oldest' | 'sliding-window' | 'keep-system-first-recent' | 'summarize-older';

/** A chat message in the OpenAI or Anthropic shape; other fields are kept as they are. */
export type ChatMessage = { role: string; [key: string]: unknown };

export interface FitOptions<M extends ChatMessage = ChatMessage> {
  model: string;
  /** Tokens to leave for the reply. */
  maxOutputTokens: number;
  /** Default: the model's known context window; required for models without one. */
  contextWindow?: number;
  strategy: FitStrategy;
  /** `openai-chat` (default) or `anthropic-messages`. */
  shape?: Extract<BodyShape, 'openai-chat' | 'anthropic-messages'>;
  /** Tool definitions sent with the messages; they take room too. */
  tools?: unknown[];
  /** Anthropic's top-level `system`, which takes room but is not a message. */
  system?: unknown;
  /** `sliding-window`: the most messages kept (whole tool exchanges only). Default: no count limit. */
  windowSize?: number;
  /**
   * `summarize-older`: turns the messages that do not fit into a summary. It is an LLM call of
   * its own: pass one made through a metered fetch, so its cost is recorded too.
   */
  summarize?: (older: M[], options: { maxTokens: number; model: string }) => Promise<string>;
  /** `summarize-older`: room kept for the summary. Default a quarter of the budget, at most 1,024. */
  summaryMaxTokens?: number;
  /** `summarize-older`: the message that carries the summary. Default an assistant (Anthropic: user) message. */
  summaryMessage?: (summary: string) => M;
}

export interface FitResult<M extends ChatMessage = ChatMessage> {
  messages: M[];
  /** Input tokens of the result with its tools and system, counted with the model's tokenizer. */
  inputTokens: number;
  /** Tokens the input may take: context window minus max output tokens. */
  budget: number;
  /** Messages left out (for `summarize-older`, the ones summarized or dropped). */
  dropped: M[];
  summary: string | null;
  /** The model's own tokenizer counted (OpenAI models); false: an o200k_base approximation. */
  exact: boolean;
}

// --- guards -----------------------------------------------------------------------------------

export interface GuardOptions {
  /** Set this max output tokens on calls that set none. Opt-in: it changes the request. */
  defaultMaxTokens?: number;
  /**
   * Refuse a call whose conversation already holds more than this many tool-call rounds
   * (assistant turns that called tools): the agent loop's depth, read from its own history.
   */
  maxToolRounds?: number;
  /** Per-user limits over a sliding window; calls without a user are not limited. */
  perUser?: {
    requests?: number;
    /** Input (estimated before the call) plus output (from the call's record) tokens. */
    tokens?: number;
    /** Default 60,000 ms. */
    windowMs?: number;
  };
  /** Monotonic clock (ms). Default performance.now. */
  now?: () => number;
}

export interface Guards {
  /** The request body with the default max tokens applied, or null when it needs no change. */
  amend(input: FetchInput, init: RequestInit | undefined): Record<string, unknown> | null;
  /** A provider-shaped refusal, or null to let the call go. */
  check(input: FetchInput, init: RequestInit | undefined, user: string | undefined): Promise<Response | null>;
  /** Charges a finished call's output tokens to its user (wire to a meter sink or `onRecord`). */
  observe(record: CallRecord): void;
}
