/** Faults the simulator can inject, each in the shape the addressed provider uses. */
export type Fault =
  | 'rate_limit'
  | 'server_error'
  | 'overloaded'
  | 'bad_request'
  | 'context_length'
  | 'auth'
  | 'forbidden'
  | 'not_found'
  | 'content_filter'
  | 'cut_stream'
  | 'error_event'
  | 'garbage'
  | 'slow_headers';

/** Server-reported timings added to OpenAI-compatible responses, as these servers send them. */
export type TimingReport = 'none' | 'groq' | 'llamacpp' | 'vllm';

/** How one request is answered. Merged: server defaults < enqueued < `x-sim-options` header. */
export interface Behavior {
  /** Waiting for a GPU before any work starts. */
  queueMs: number;
  /** Prefill time = this × input tokens. */
  prefillMsPerToken: number;
  /** Gap between consecutive output tokens (reasoning tokens take this long each too). */
  msPerToken: number;
  /** Visible output tokens per choice, capped by the request's max-tokens field. */
  outputTokens: number;
  cacheReadTokens: number;
  /** Reported by Anthropic only (OpenAI has no wire field for cache writes). */
  cacheWriteTokens: number;
  /** Counted inside completion/output tokens, produce no text, spent before the first visible token. */
  reasoningTokens: number;
  /** Answer with this many tool calls instead of text. */
  toolCalls: number;
  report: TimingReport;
  fault: Fault | null;
  /** Tokens sent before `cut_stream`, `error_event` or a streamed `content_filter` strikes. */
  faultAfterTokens: number;
  retryAfterS: number;
  slowHeadersMs: number;
  lineEnding: '\n' | '\r\n' | '\r';
  /** `event`: one socket write per event; `byte`: one per byte; `random`: random split points. */
  chunking: 'event' | 'byte' | 'random';
}

export interface SimOptions {
  /** Default 0: any free port. The server always listens on 127.0.0.1. */
  port?: number;
  defaults?: Partial<Behavior>;
  /** Azure classic deployment name → the model the response reports (default `gpt-4o-2024-08-06`). */
  azureDeployments?: Record<string, string>;
  /** Report `model` with a date suffix (`-2024-08-06`, Anthropic `-20241022`) unless already dated. */
  datedModels?: boolean;
}

export type SimProvider = 'openai' | 'anthropic' | 'azure';
export type SimEndpoint =
  | 'chat'
  | 'responses'
  | 'embeddings'
  | 'completions'
  | 'messages'
  | 'count_tokens'
  | 'unknown';
export type SimOutcome = 'completed' | 'fault' | 'client_closed' | 'cut';

/**
 * The truth about one request. Token counts are what the simulator processed and (where the
 * wire format has a field for it) reported: `inputTokens` includes cache reads and writes (the
 * GenAI convention; Anthropic's wire `input_tokens` is `inputTokens − cacheRead − cacheWrite`),
 * `outputTokens` includes reasoning tokens and counts all choices, and only tokens actually sent
 * when a stream ends early. A request refused with an HTTP error processed nothing: all zero.
 * Times are epoch ms (`performance.timeOrigin + performance.now()`); null until they happen.
 * For a non-streamed body, first/last token times are when generation produced them inside
 * the simulator, before the body was sent.
 */
export interface SimCall {
  id: string;
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  provider: SimProvider;
  endpoint: SimEndpoint;
  /** The model the response reports; null when none was answered. */
  model: string | null;
  stream: boolean;
  behavior: Behavior;
  /** HTTP status sent; 0 until headers are sent. */
  status: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** Planned delays. */
  queueMs: number;
  prefillMs: number;
  reasoningMs: number;
  /** First visible token → last token. */
  generationMs: number;
  receivedAt: number;
  headersSentAt: number | null;
  firstTokenAt: number | null;
  lastTokenAt: number | null;
  endedAt: number | null;
  /** null while in flight. */
  outcome: SimOutcome | null;
  clientClosed: boolean;
}

export interface Simulator {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Every request received, in arrival order. */
  calls: SimCall[];
  setDefaults(behavior: Partial<Behavior>): void;
  /** Behaviours for the next requests, one each, first in first out, over the defaults. */
  enqueue(...behaviors: Partial<Behavior>[]): void;
  /** The earliest call that matches and has ended (completed, failed, cut or closed by the client). */
  waitForCall(predicate?: (call: SimCall) => boolean, timeoutMs?: number): Promise<SimCall>;
  /** Clears calls, queue and defaults. */
  reset(): void;
  /** Closes the server and every open socket. */
  close(): Promise<void>;
}
