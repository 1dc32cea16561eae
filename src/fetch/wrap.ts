import { RETRY_GROUP_TAG } from '../attribution.js';
import { localRefusal } from '../providers/refusal.js';
import { detect, isLlmCall, urlOnly } from '../providers/registry.js';
import type {
  BodyFormat,
  Detection,
  EventFilter,
  HeaderFacts,
  ProviderAdapter,
  ResponseParser,
} from '../providers/types.js';
import type { Attribution, PreflightInfo, RequestInfo } from '../record.js';
import type { SpanHandle, SpanSink } from '../telemetry/spans.js';
import { concatBytes } from './bytes.js';
import { createJsonArrayParser } from './json-array.js';
import { createNdjsonParser } from './ndjson.js';
import {
  type BodyRead,
  createTarget,
  type Endpoint,
  endpointOf,
  type FetchInput,
  type FetchLike,
  parseUrl,
  postHref,
  readInitBody,
  readJsonBody,
  requestHeaders,
  type Target,
} from './request.js';
import { withBody, withObservedBody } from './response.js';
import { createSseParser, type SseEvent } from './sse.js';
import { createSseFramer } from './sse-framer.js';
import { type BodyObserver, tapBody } from './tap.js';

/** Everything known about one call while it runs. Internal: sinks get the CallRecord. */
export interface CallState {
  id: string;
  detection: Detection;
  target: Target;
  info: RequestInfo;
  /** The parsed request body, kept until the call ends (for late token estimates). */
  body: Record<string, unknown> | null;
  unparsedReason: string | null;
  attribution: Attribution;
  span: SpanHandle | null;
  preflight: PreflightInfo;
  startMs: number;
  headersMs: number | null;
  firstTokenMs: number | null;
  lastTokenMs: number | null;
  endMs: number;
  status: number | null;
  facts: HeaderFacts | null;
  parser: ResponseParser;
  /** Stream events seen. */
  chunks: number;
  /**
   * Response bytes too large to parse (an event over the parser's cap, a JSON body over
   * `maxResponseBodyBytes`): what they said is unknown, so usage is estimated.
   */
  unreadBytes: number;
  /** How the exchange ended, as seen by the wrapper. */
  ending: 'done' | 'error' | 'cancel' | 'thrown' | 'blocked' | 'refused';
  error: unknown;
  /** The parsed body of an error response (status >= 400), or its text. */
  errorBody: unknown;
  /**
   * The llm-meter guard that answered instead of the provider (`x-llm-meter-guard` on an error
   * response: a rate limiter, circuit breaker or tool-round cap beneath this meter, or in an
   * llm-meter gateway in front of it), or null.
   */
  localGuard: string | null;
  callerAborted: boolean;
}

/** What the wrapper needs from the meter. */
export interface Engine {
  adapters: readonly ProviderAdapter[];
  maxRequestBodyBytes: number;
  maxResponseBodyBytes: number;
  streamUsage: boolean;
  /** Records carry a salted hash of the API key: the request's headers are copied at the call. */
  hashesApiKeys: boolean;
  now(): number;
  newId(): string;
  attribution(): Attribution;
  spans: SpanSink;
  /**
   * Runs before the call is sent. Returns a Response to answer the caller with instead of
   * sending (a budget refusal), or null to proceed; throws to refuse with an error.
   */
  preflight(state: CallState): Promise<Response | null> | Response | null;
  /** Called exactly once per metered call, when it has ended. Never throws. */
  complete(state: CallState): void;
}

const encoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Wrap a fetch so every LLM API call through it is metered. Anything that is not an LLM call
 * goes to `base` with the very same arguments, with no parsing and no span.
 */
export function wrapFetch(base: FetchLike, engine: Engine): FetchLike {
  const known = knownTargets(engine.adapters);
  return function meteredFetch(input: FetchInput, init?: RequestInit): Promise<Response> {
    let found: KnownTarget | null = null;
    let target: Target | null = null;
    try {
      const href = postHref(input, init);
      found = href === null ? null : known(href, input, init);
      if (found) {
        target = createTarget(found.endpoint, input, init);
        // The salted key hash is taken at the end of the call: copy the caller's headers now, as
        // they are when the call is made.
        if (engine.hashesApiKeys) void target.headers;
      }
    } catch {
      found = null;
    }
    if (!found || !target) return base(input, init);
    return meter(base, engine, found.detection, target, input, init);
  };
}

interface KnownTarget {
  endpoint: Endpoint;
  detection: Detection;
}

const MAX_KNOWN_TARGETS = 512;
const MAX_KNOWN_URL_LENGTH = 2048;

/**
 * Detection by URL, remembered: the same few endpoints are called over and over, and parsing
 * the URL and matching it against every adapter's patterns is most of what a call costs before
 * it is sent. Only where every adapter decides from URL and method alone (the built-in ones);
 * bounded, starting over when full. The URL objects are shared and never modified.
 */
function knownTargets(
  adapters: readonly ProviderAdapter[],
): (href: string, input: FetchInput, init: RequestInit | undefined) => KnownTarget | null {
  const resolve = (href: string, headers: () => Headers): KnownTarget | null => {
    const url = parseUrl(href);
    if (!url) return null;
    const detection = detect(adapters, url, 'POST', headers);
    return detection ? { endpoint: endpointOf(url), detection } : null;
  };
  if (!adapters.every(urlOnly)) {
    return (href, input, init) => resolve(href, () => requestHeaders(input, init));
  }
  const noHeaders = () => new Headers();
  const cache = new Map<string, KnownTarget | null>();
  return (href) => {
    let found = cache.get(href);
    if (found === undefined) {
      found = resolve(href, noHeaders);
      if (href.length <= MAX_KNOWN_URL_LENGTH) {
        if (cache.size >= MAX_KNOWN_TARGETS) cache.clear();
        cache.set(href, found);
      }
    }
    return found;
  };
}

function unparsedInfo(detection: Detection): RequestInfo {
  return {
    parsed: false,
    model: detection.urlModel,
    stream: detection.urlStream ?? false,
    maxTokens: null,
    temperature: null,
    choices: null,
    toolCount: 0,
    toolRounds: 0,
  };
}

const UNREADABLE: BodyRead = { kind: 'unparsed', reason: 'unreadable' };

/** Reads the request body (synchronously unless it is a `Request`'s), then meters the call. */
function meter(
  base: FetchLike,
  engine: Engine,
  detection: Detection,
  target: Target,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> {
  let read: BodyRead | null;
  try {
    read = readInitBody(input, init, engine.maxRequestBodyBytes);
  } catch {
    read = UNREADABLE;
  }
  if (read) return send(base, engine, detection, target, input, init, read);
  return readJsonBody(input, init, engine.maxRequestBodyBytes).then(
    (body) => send(base, engine, detection, target, input, init, body),
    () => send(base, engine, detection, target, input, init, UNREADABLE),
  );
}

async function send(
  base: FetchLike,
  engine: Engine,
  detection: Detection,
  target: Target,
  input: FetchInput,
  init: RequestInit | undefined,
  read: BodyRead,
): Promise<Response> {
  const adapter = detection.adapter;
  let info: RequestInfo | null = null;
  if (read.kind === 'json') {
    try {
      info = adapter.parseRequest(read.value, detection);
    } catch {
      info = unparsedInfo(detection);
    }
  }
  if (!isLlmCall(detection, info)) return base(input, init);
  info ??= unparsedInfo(detection);

  const state: CallState = {
    id: engine.newId(),
    detection,
    target,
    info,
    body: read.kind === 'json' ? read.value : null,
    unparsedReason: read.kind === 'unparsed' ? read.reason : null,
    attribution: engine.attribution(),
    span: null,
    preflight: {
      inputTokensEstimate: null,
      projectedMaxCostNanos: null,
      contextWindow: null,
      contextExceeded: null,
    },
    startMs: engine.now(),
    headersMs: null,
    firstTokenMs: null,
    lastTokenMs: null,
    endMs: 0,
    status: null,
    facts: null,
    parser: adapter.createParser(detection, info),
    chunks: 0,
    unreadBytes: 0,
    ending: 'done',
    error: null,
    errorBody: null,
    localGuard: null,
    callerAborted: false,
  };

  try {
    state.span = engine.spans.start({
      operation: detection.operation,
      provider: detection.provider,
      requestModel: info.model,
      request: info,
      serverAddress: target.address,
      serverPort: target.port,
      startMs: state.startMs,
      retryGroup: state.attribution.tags[RETRY_GROUP_TAG],
      body: state.body,
    });
  } catch {
    state.span = null;
  }

  // Budgets and context-window enforcement. A refusal never reaches the provider; its span
  // and record still say it happened.
  try {
    const pending = engine.preflight(state);
    const refusal = pending instanceof Promise ? await pending : pending;
    if (refusal) {
      state.ending = 'blocked';
      state.status = refusal.status;
      settle(engine, state);
      return refusal;
    }
  } catch (error) {
    if (isOwnRefusal(error)) {
      // Answered like the provider would (a 400 in its own error shape, not to be retried), so
      // SDKs raise their usual BadRequestError with our message instead of retrying a throw.
      state.ending = 'refused';
      state.error = error;
      state.status = 400;
      settle(engine, state);
      return localRefusal(adapter, {
        marker: ['x-llm-meter-refused', 'context_window'],
        status: 400,
        type: 'context_length_exceeded',
        message: (error as Error).message,
      });
    }
    // Any other failure in pre-flight is ours: fail open and send the call.
  }

  let filter: EventFilter | null = null;
  let sendInit = init;
  if (read.kind === 'json' && read.fromInit && adapter.amendRequest) {
    try {
      const amended = adapter.amendRequest(read.value, info, detection, { streamUsage: engine.streamUsage });
      if (amended) {
        filter = amended.filter;
        const headers = new Headers(init?.headers);
        headers.delete('content-length');
        sendInit = { ...init, body: JSON.stringify(amended.body), headers };
      }
    } catch {
      filter = null;
      sendInit = init;
    }
  }

  let response: Response;
  try {
    const span = state.span;
    response = await (span ? engine.spans.within(span, () => base(input, sendInit)) : base(input, sendInit));
  } catch (error) {
    state.ending = 'thrown';
    const timedOut = clientTimedOut(state, engine.now(), error);
    state.error = timedOut
      ? new DOMException('The client timed out before the response.', 'TimeoutError')
      : error;
    state.callerAborted = !timedOut && callerAborted(input, init, error);
    settle(engine, state);
    throw error;
  }

  state.headersMs = engine.now();
  state.status = response.status;
  try {
    state.facts = adapter.readHeaders(response.headers);
    if (!response.ok) state.localGuard = response.headers.get('x-llm-meter-guard');
  } catch {
    state.facts = null;
  }
  const body = response.body;
  if (!body) {
    settle(engine, state);
    return response;
  }
  const contentType = response.headers.get('content-type') ?? '';
  let observer: BodyObserver;
  let format: BodyFormat;
  try {
    format = !response.ok
      ? 'json'
      : adapter.bodyFormat
        ? adapter.bodyFormat(detection, info, contentType)
        : contentType.includes('text/event-stream')
          ? 'sse'
          : 'json';
    if (format !== 'sse') filter = null;
    observer =
      format === 'sse'
        ? filter
          ? rewritingSseObserver(engine, state, filter, input, init)
          : sseObserver(engine, state, input, init)
        : format === 'json'
          ? jsonObserver(engine, state, input, init)
          : lineObserver(engine, state, format, input, init);
  } catch {
    settle(engine, state);
    return response;
  }
  // A whole JSON body is observed when the caller reads it; streams go through the tap.
  if (format === 'json') return withObservedBody(response, observer, engine.now);
  return withBody(response, tapBody(body, observer, engine.now), filter !== null);
}

function isOwnRefusal(error: unknown): boolean {
  return error instanceof Error && error.name === 'ContextWindowExceededError';
}

function callerAborted(input: FetchInput, init: RequestInit | undefined, error: unknown): boolean {
  const signal =
    init?.signal ?? (typeof input === 'object' && !(input instanceof URL) ? input.signal : undefined);
  // A caller's own timeout (AbortSignal.timeout) is a timeout error, not a cancellation.
  if (signal?.aborted) return (signal.reason as { name?: unknown } | undefined)?.name !== 'TimeoutError';
  return error instanceof Error && error.name === 'AbortError' && !signal;
}

/**
 * The official SDKs enforce their `timeout` option with an abort that carries no reason, which
 * reads like the caller's own cancellation. They announce the timeout in whole seconds
 * (`X-Stainless-Timeout`: anthropic-sdk-typescript always, openai-node only for a per-request
 * `timeout`): an abort at or after it is the SDK timing out. The SDK's timer starts a little
 * before this call's clock (and timers may fire a millisecond early), hence the slack.
 * Timeouts under a second announce 0 and stay indistinguishable from a cancellation.
 */
const SDK_TIMER_SLACK_MS = 250;

function clientTimedOut(state: CallState, now: number, error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'AbortError') return false;
  const seconds = Number(state.target.headers.get('x-stainless-timeout'));
  return (
    Number.isFinite(seconds) && seconds >= 1 && now - state.startMs >= seconds * 1000 - SDK_TIMER_SLACK_MS
  );
}

function settle(engine: Engine, state: CallState): void {
  state.endMs = engine.now();
  try {
    engine.complete(state);
  } catch {
    // complete() never throws by contract; this is the last fence.
  }
}

function endObserved(
  engine: Engine,
  state: CallState,
  input: FetchInput,
  init: RequestInit | undefined,
  how: 'done' | 'error' | 'cancel',
  error: unknown,
): void {
  state.ending = how;
  state.error = error ?? null;
  if (how === 'cancel') state.callerAborted = true;
  else if (how === 'error') state.callerAborted = callerAborted(input, init, error);
  settle(engine, state);
}

function onEvent(state: CallState, event: SseEvent, at: number): void {
  state.chunks++;
  if (state.parser.event(event)) {
    state.firstTokenMs ??= at;
    state.lastTokenMs = at;
  }
}

function sseObserver(
  engine: Engine,
  state: CallState,
  input: FetchInput,
  init: RequestInit | undefined,
): BodyObserver {
  let at = 0;
  const sse = createSseParser({
    onEvent: (event) => onEvent(state, event, at),
    onOversized: (bytes) => {
      state.unreadBytes += bytes;
    },
  });
  return {
    chunk(bytes, atMs) {
      at = atMs;
      sse.feed(bytes);
      return bytes;
    },
    drain: () => null,
    finish(how, error) {
      sse.end();
      endObserved(engine, state, input, init, how, error);
    },
  };
}

/** NDJSON lines (Ollama) or the elements of one JSON array (Gemini), each one stream event. */
function lineObserver(
  engine: Engine,
  state: CallState,
  format: 'ndjson' | 'json-array',
  input: FetchInput,
  init: RequestInit | undefined,
): BodyObserver {
  let at = 0;
  const onText = (data: string) => onEvent(state, { event: '', data, id: undefined }, at);
  const onOversized = (bytes: number) => {
    state.unreadBytes += bytes;
  };
  const parser =
    format === 'ndjson'
      ? createNdjsonParser({ onLine: onText, onOversized })
      : createJsonArrayParser({ onElement: onText, onOversized });
  return {
    chunk(bytes, atMs) {
      at = atMs;
      parser.feed(bytes);
      return bytes;
    },
    drain: () => null,
    finish(how, error) {
      parser.end();
      endObserved(engine, state, input, init, how, error);
    },
  };
}

/** Frames whole events so a provider's filter can hide or rewrite them (see amendRequest). */
function rewritingSseObserver(
  engine: Engine,
  state: CallState,
  filter: EventFilter,
  input: FetchInput,
  init: RequestInit | undefined,
): BodyObserver {
  let at = 0;
  let out: Uint8Array[] = [];
  // One spec parser for the whole stream, fed whole blocks: each block dispatches its events.
  let events: SseEvent[] = [];
  const parser = createSseParser({
    onEvent: (event) => events.push(event),
    maxEventBytes: Number.POSITIVE_INFINITY,
  });
  const framer = createSseFramer({
    onBlock(block, oversized) {
      // A piece of an event too large to hold goes to the caller as it came, unparsed.
      if (oversized) {
        state.unreadBytes += block.byteLength;
        out.push(block);
        return;
      }
      parser.feed(block);
      const parsed = events;
      events = [];
      let keep: Uint8Array | null = block;
      for (const event of parsed) {
        onEvent(state, event, at);
        let verdict: ReturnType<EventFilter> = 'keep';
        try {
          verdict = filter(event);
        } catch {
          verdict = 'keep';
        }
        if (verdict === 'drop') keep = null;
        else if (verdict !== 'keep') keep = encodeEvent(event.event, verdict, block);
      }
      if (keep) out.push(keep);
    },
  });
  const take = (): Uint8Array => {
    const parts = out;
    out = [];
    return parts.length === 1 ? parts[0]! : concatBytes(parts);
  };
  return {
    chunk(bytes, atMs) {
      at = atMs;
      framer.feed(bytes);
      return take();
    },
    drain() {
      // An unterminated last event goes to the caller as it came; like any stream's, it is
      // not an event (the spec discards it at the end).
      const rest = framer.end();
      if (rest && rest.byteLength > 0) out.push(rest);
      return take();
    },
    finish(how, error) {
      endObserved(engine, state, input, init, how, error);
    },
  };
}

function encodeEvent(name: string, data: string, original: Uint8Array): Uint8Array {
  const eol = original.includes(0x0d) ? (original.includes(0x0a) ? '\r\n' : '\r') : '\n';
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}`);
  return encoder.encode((name ? `event: ${name}${eol}` : '') + lines.join(eol) + eol + eol);
}

/** A whole JSON body: kept (by reference, no copy) up to the cap and parsed once at the end. */
function jsonObserver(
  engine: Engine,
  state: CallState,
  input: FetchInput,
  init: RequestInit | undefined,
): BodyObserver {
  let parts: Uint8Array[] = [];
  let size = 0;
  let overflow = false;
  return {
    chunk(bytes) {
      size += bytes.byteLength;
      if (!overflow) {
        if (size > engine.maxResponseBodyBytes) {
          overflow = true;
          parts = [];
        } else parts.push(bytes);
      }
      return bytes;
    },
    drain: () => null,
    finish(how, error) {
      if (how === 'done' && !overflow) {
        const text = textDecoder.decode(parts.length === 1 ? parts[0]! : concatBytes(parts));
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          value = undefined;
        }
        if ((state.status ?? 0) >= 400) state.errorBody = value ?? text.slice(0, 2000);
        else if (value !== undefined) state.parser.json(value);
      }
      if (overflow) state.unreadBytes = size;
      parts = [];
      endObserved(engine, state, input, init, how, error);
    },
  };
}
