import { RETRY_GROUP_TAG } from '../attribution.js';
import { detect, urlOnly } from '../providers/registry.js';
import type { BodyFormat, Detection, EventFilter, ProviderAdapter } from '../providers/types.js';
import { requestInfoOf } from './detect.js';
import type { Engine } from './engine.js';
import { beginCall, type CallState, callerAborted, clientTimedOut, endCall } from './lifecycle.js';
import { jsonObserver, lineObserver, rewritingSseObserver, sseObserver } from './observers.js';
import { guardRefusalOf, type Refusal, refusalResponse } from './refuse.js';
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
import { type BodyObserver, tapBody } from './tap.js';

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
    } catch (error) {
      engine.report('detect', error);
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
  } catch (error) {
    engine.report('readBody', error);
    read = UNREADABLE;
  }
  if (read) return send(base, engine, detection, target, input, init, read);
  return readJsonBody(input, init, engine.maxRequestBodyBytes).then(
    (body) => send(base, engine, detection, target, input, init, body),
    (error) => {
      engine.report('readBody', error);
      return send(base, engine, detection, target, input, init, UNREADABLE);
    },
  );
}

/**
 * One metered call, step by step: parse it, begin it, start its span, ask the gates, amend the
 * request, send it, and observe the response on its way to the caller. Each step fails open
 * (counted at its place, see WRAPPER_PLACES); only a gate's refusal keeps the call from being sent.
 */
async function send(
  base: FetchLike,
  engine: Engine,
  detection: Detection,
  target: Target,
  input: FetchInput,
  init: RequestInit | undefined,
  read: BodyRead,
): Promise<Response> {
  const info = requestInfoOf(detection, read, (error) => engine.report('adapter.parseRequest', error));
  if (!info) return base(input, init);
  const state = beginCall(
    engine,
    detection,
    target,
    info,
    read.kind === 'json' ? read.value : null,
    read.kind === 'unparsed' ? read.reason : null,
    input,
    init,
  );
  if (!state) return base(input, init);
  startSpan(engine, state);

  // runGates: budgets and context-window enforcement. The engine answers synchronously when no
  // gate applies, so the common call takes no extra tick here.
  let refusal: Refusal | null;
  try {
    const pending = engine.gate(state.call);
    refusal = pending instanceof Promise ? await pending : pending;
  } catch (error) {
    // A failure in a gate is ours: fail open and send the call.
    engine.report('gates', error);
    refusal = null;
  }
  if (refusal) return refuse(engine, state, refusal);

  const amended = amendRequest(engine, state, read);
  let response: Response;
  try {
    response = await sendUpstream(engine, state, base, amended ? amended.init : init);
  } catch (error) {
    throw upstreamFailed(engine, state, error);
  }
  return observeResponse(engine, state, response, amended ? amended.filter : null);
}

function startSpan(engine: Engine, state: CallState): void {
  const { call } = state;
  try {
    state.span = engine.spans.start({
      operation: call.detection.operation,
      provider: call.detection.provider,
      requestModel: call.info.model,
      request: call.info,
      serverAddress: call.target.address,
      serverPort: call.target.port,
      startMs: state.startMs,
      retryGroup: call.attribution.tags[RETRY_GROUP_TAG],
      body: call.body,
    });
  } catch (error) {
    engine.report('spans', error);
    state.span = null;
  }
}

/**
 * A gate said no. The call never reaches the provider: the caller gets the refusal in the
 * provider's own error shape, and the call's span and record still say it happened (`blocked`).
 */
function refuse(engine: Engine, state: CallState, refusal: Refusal): Response {
  state.status = refusal.status;
  endCall(engine, state, 'refused', null, false, refusal);
  return refusalResponse(state.call.detection.adapter, refusal, (error) =>
    engine.report('adapter.errorBody', error),
  );
}

/** The body the adapter would rather send (e.g. asking for stream usage), and the filter that hides the change. */
function amendRequest(
  engine: Engine,
  state: CallState,
  read: BodyRead,
): { init: RequestInit; filter: EventFilter } | null {
  const { adapter } = state.call.detection;
  if (read.kind !== 'json' || !read.fromInit || !adapter.amendRequest) return null;
  try {
    const amended = adapter.amendRequest(read.value, state.call.info, state.call.detection, {
      streamUsage: engine.streamUsage,
    });
    if (!amended) return null;
    const headers = new Headers(state.init?.headers);
    headers.delete('content-length');
    return { init: { ...state.init, body: JSON.stringify(amended.body), headers }, filter: amended.filter };
  } catch (error) {
    engine.report('adapter.amendRequest', error);
    return null;
  }
}

/** The upstream fetch, with the call's span active so the HTTP request nests under it. */
function sendUpstream(
  engine: Engine,
  state: CallState,
  base: FetchLike,
  init: RequestInit | undefined,
): Promise<Response> {
  const span = state.span;
  return span ? engine.spans.within(span, () => base(state.input, init)) : base(state.input, init);
}

/** The upstream fetch threw: the call ends without a response. Returns the error to rethrow. */
function upstreamFailed(engine: Engine, state: CallState, error: unknown): unknown {
  const timedOut = clientTimedOut(state, engine.now(), error);
  endCall(
    engine,
    state,
    'thrown',
    timedOut ? new DOMException('The client timed out before the response.', 'TimeoutError') : error,
    !timedOut && callerAborted(state.input, state.init, error),
  );
  return error;
}

/**
 * The response's headers are read now; its body goes to the caller through an observer that
 * ends the call when the body ends.
 */
function observeResponse(
  engine: Engine,
  state: CallState,
  response: Response,
  filter: EventFilter | null,
): Response {
  const { adapter } = state.call.detection;
  state.headersMs = engine.now();
  state.status = response.status;
  try {
    state.facts = adapter.readHeaders(response.headers);
  } catch (error) {
    engine.report('adapter.readHeaders', error);
    state.facts = null;
  }
  if (!response.ok) state.guard = guardRefusalOf(response);
  const body = response.body;
  if (!body) {
    endCall(engine, state, 'done', null, false);
    return response;
  }
  let format: BodyFormat;
  try {
    format = bodyFormatOf(state, response);
  } catch (error) {
    engine.report('adapter.bodyFormat', error);
    endCall(engine, state, 'done', null, false);
    return response;
  }
  if (format !== 'sse') filter = null;
  let observer: BodyObserver;
  try {
    observer =
      format === 'sse'
        ? filter
          ? rewritingSseObserver(engine, state, filter)
          : sseObserver(engine, state)
        : format === 'json'
          ? jsonObserver(engine, state)
          : lineObserver(engine, state, format);
  } catch (error) {
    engine.report('observer', error);
    endCall(engine, state, 'done', null, false);
    return response;
  }
  // A whole JSON body is observed when the caller reads it; streams go through the tap.
  if (format === 'json') return withObservedBody(response, observer, engine.now);
  return withBody(response, tapBody(body, observer, engine.now), filter !== null);
}

/** An error body is one JSON value; a success is framed as the adapter says (default: by content type). */
function bodyFormatOf(state: CallState, response: Response): BodyFormat {
  if (!response.ok) return 'json';
  const contentType = response.headers.get('content-type') ?? '';
  const { detection, info } = state.call;
  if (detection.adapter.bodyFormat) return detection.adapter.bodyFormat(detection, info, contentType);
  return contentType.includes('text/event-stream') ? 'sse' : 'json';
}
