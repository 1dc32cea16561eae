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

/**
 * Server-specific figures in OpenAI-compatible responses, as these servers send them: Groq's,
 * llama.cpp's and vLLM's own timings, and DeepSeek's cache-hit usage fields. Gemini and Ollama
 * always report what their wire formats carry (Ollama's durations, Gemini's usageMetadata).
 */
export type TimingReport = 'none' | 'groq' | 'llamacpp' | 'vllm' | 'deepseek';

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
  /**
   * Azure deployment name → the model the response reports. Classic paths
   * (`/openai/deployments/{name}/…`) default to `gpt-4o-2024-08-06`; on the v1 API
   * (`/openai/v1/…`) a body `model` listed here is a deployment and answered as Azure.
   */
  azureDeployments?: Record<string, string>;
  /** Report `model` with a date suffix (`-2024-08-06`, Anthropic `-20241022`) unless already dated. */
  datedModels?: boolean;
}

/**
 * Who the request was addressed to, by path: OpenAI shapes (`…/chat/completions`…), Azure classic
 * deployments, Anthropic (`…/messages`), Gemini (`…/models/{model}:{method}`; `vertex` when the
 * path has Vertex AI's `projects/…/locations/…` or `publishers/…` prefix) and Ollama (`/api/…`).
 */
export type SimProvider = 'openai' | 'anthropic' | 'azure' | 'gemini' | 'vertex' | 'ollama';
/**
 * Gemini: `generate_content` (`:generateContent` and `:streamGenerateContent`), `embed_content`,
 * `batch_embed_contents`, `count_tokens`. Ollama: `chat`, `generate`, `embed`, and `embeddings`
 * (the legacy `/api/embeddings`).
 */
export type SimEndpoint =
  | 'chat'
  | 'responses'
  | 'embeddings'
  | 'completions'
  | 'messages'
  | 'count_tokens'
  | 'generate_content'
  | 'embed_content'
  | 'batch_embed_contents'
  | 'generate'
  | 'embed'
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
 *
 * Servers that report their own split (Groq, llama.cpp, vLLM, Ollama) report the planned phases:
 * queue = `queueMs` (Ollama: `load_duration`), prefill = `prefillMs`, and decoding =
 * `reasoningMs + generationMs` (Groq `completion_time`, llama.cpp `predicted_ms`, vLLM
 * `generation_time_ms`, Ollama `eval_duration`). Ollama has no wire field for cache reads or
 * reasoning tokens, so its calls plan none of either; Gemini and Ollama send a tool call whole,
 * with its last token.
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
