import type { Operation, RateLimitInfo, RequestInfo } from '../record.js';
import type { BodyShape } from '../tokens/index.js';

/**
 * An adapter knows one wire format and nothing else: no telemetry, no store, no budgets.
 * Adding a provider is one file implementing this interface plus a line in registry.ts.
 */
export interface ProviderAdapter {
  readonly id: string;
  /** Cheap, from the URL and method only. null: not this wire format. */
  detect(url: URL, method: string, headers: Headers): Detection | null;
  /**
   * Read what the request asks for. `body` is the parsed JSON body (an object). Never rejects a
   * body for fields it does not read; `parsed: false` when a field it reads has the wrong type.
   */
  parseRequest(body: Record<string, unknown>, detection: Detection): RequestInfo;
  /**
   * Optionally change the request before it is sent (e.g. ask for stream usage). Returns the
   * new body and a filter that hides the change from the caller's view of the response, or
   * null to send the body untouched.
   */
  amendRequest?(
    body: Record<string, unknown>,
    info: RequestInfo,
    detection: Detection,
    options: AmendOptions,
  ): { body: Record<string, unknown>; filter: EventFilter } | null;
  /** A fresh per-call parser of the response. */
  createParser(detection: Detection, info: RequestInfo): ResponseParser;
  /** Provider-specific error code/type/message from an error body (JSON or text). */
  parseError(body: unknown): ProviderError;
  /**
   * An error body in this provider's own shape, for a refusal llm-meter answers itself (a
   * blocking budget), so the provider's SDK raises its usual error class.
   */
  errorBody(type: string, message: string): unknown;
  /** Rate-limit and timing figures from response headers. */
  readHeaders(headers: Headers): HeaderFacts;
  /**
   * How a successful response body is framed, from its content type: SSE events, NDJSON lines
   * (Ollama), one incrementally arriving JSON array (Gemini without `alt=sse`), or one JSON
   * value. Optional: the default is SSE for `text/event-stream`, else JSON.
   */
  bodyFormat?(detection: Detection, info: RequestInfo, contentType: string): BodyFormat;
  /** Shape of the request body, for the tokenizer's pre-flight estimate. */
  readonly bodyShape: (detection: Detection) => BodyShape;
  /**
   * The body with `limit` as its maximum output tokens, in this wire format's own field, or
   * null when the body sets one already or the call generates nothing (embeddings, token
   * counts). For the default-max-tokens guard; absent: the guard leaves such calls alone.
   */
  withMaxOutputTokens?(
    body: Record<string, unknown>,
    detection: Detection,
    limit: number,
  ): Record<string, unknown> | null;
}

export type { BodyShape } from '../tokens/index.js';

export type BodyFormat = 'sse' | 'ndjson' | 'json-array' | 'json';

export interface Detection {
  adapter: ProviderAdapter;
  /** `gen_ai.provider.name`. */
  provider: string;
  operation: Operation;
  /** A model named by the URL (Azure deployment, Gemini path); the body's model wins. */
  urlModel: string | null;
  /** The response is a stream regardless of the body (e.g. Gemini `:streamGenerateContent`). */
  urlStream?: boolean;
  /**
   * Meter the call only when its body is JSON naming a model (see `isLlmCall`): for paths that
   * other servers use too, such as Ollama's `/api/chat` on a host not known to be Ollama's.
   * Anything else passes through unmetered.
   */
  requiresJsonBody?: boolean;
}

interface AmendOptions {
  /** Ask OpenAI chat streams for their usage chunk and hide it from the caller. */
  streamUsage: boolean;
}

/** What the forwarder does with one stream event. `string`: replace the event's data. */
export type EventFilter = (event: StreamEvent) => 'keep' | 'drop' | string;

export interface StreamEvent {
  /** SSE `event:` name, '' when none. */
  event: string;
  data: string;
}

export interface ProviderError {
  code: string | null;
  type: string | null;
  message: string | null;
  /** A wait the body names, where a provider says it only there (Gemini's RetryInfo). */
  retryAfterMs?: number | null;
}

export interface HeaderFacts {
  rateLimit: RateLimitInfo | null;
  retryAfterMs: number | null;
  serverProcessingMs: number | null;
  /** `x-should-retry` when present. */
  shouldRetry: boolean | null;
}

/** Server-reported latency split, in milliseconds. */
export interface ServerTiming {
  queueMs: number | null;
  prefillMs: number | null;
  generationMs: number | null;
}

/** Token figures as the wire gave them, normalized to record.ts's counting; bounded later (src/usage.ts). */
export interface ParsedUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** A figure was on the wire but not a count (a string, a negative number...): read as absent. */
  unreadable?: boolean;
}

/**
 * Fed the decoded response: `event` for each stream event, `json` once for a whole JSON
 * body. `event` returns true when the event carried output (content or a tool-call delta),
 * which the forwarder uses to stamp first and last token times.
 */
export interface ResponseParser {
  event(event: StreamEvent): boolean;
  json(body: unknown): void;
  result(): ParsedResponse;
}

export interface ParsedResponse {
  usage: ParsedUsage | null;
  responseModel: string | null;
  responseId: string | null;
  finishReasons: string[];
  toolCalls: number;
  /**
   * Tool calls whose arguments are not valid JSON: cut short, or formatted differently than the
   * caller's code expects (a model update can change how it formats arguments, silently).
   */
  invalidToolCalls: number;
  /** The stream's terminal event arrived (`[DONE]`, `message_stop`, `response.completed`...). */
  terminal: boolean;
  /** An error reported inside a 200 response (stream error event, failed response). */
  streamError: ProviderError | null;
  /** Output text received, kept only up to a cap, for estimating usage when none arrives. */
  outputText: string;
  serverTiming: ServerTiming | null;
}

/** `usage`, marked when one of its figures was on the wire but could not be read. */
export function withUnreadable(usage: ParsedUsage, odd: boolean): ParsedUsage {
  if (odd) usage.unreadable = true;
  return usage;
}

/** Usage of a call that generates nothing (embeddings, token counts): its input only. */
export function inputOnlyUsage(inputTokens: number): ParsedUsage {
  return {
    inputTokens: Math.min(Math.round(inputTokens), Number.MAX_SAFE_INTEGER),
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
  };
}

/** Shared default for parsers: nothing seen yet. */
export function emptyParsed(): ParsedResponse {
  return {
    usage: null,
    responseModel: null,
    responseId: null,
    finishReasons: [],
    toolCalls: 0,
    invalidToolCalls: 0,
    terminal: false,
    streamError: null,
    outputText: '',
    serverTiming: null,
  };
}
