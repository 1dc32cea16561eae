import { detectCall } from '../fetch/detect.js';
import {
  DEFAULT_MAX_REQUEST_BODY_BYTES,
  type FetchInput,
  type FetchLike,
  requestHeaders,
} from '../fetch/request.js';
import { DEFAULT_ADAPTERS } from '../providers/registry.js';
import type { BodyShape, Detection, ProviderAdapter } from '../providers/types.js';
import type { RequestInfo } from '../record.js';

export type { FetchInput, FetchLike };

/** What the resilience wrappers need to know about one fetch call: who it is for and what it asks. */
export interface CallFacts {
  /** The POST's URL: only POSTs are LLM calls. */
  url: URL;
  headers: Headers;
  detection: Detection;
  adapter: ProviderAdapter;
  provider: string;
  /**
   * The parsed JSON body, or null when it is not a readable JSON object (a stream, FormData, a
   * body over the meter's default `maxRequestBodyBytes`...).
   */
  body: Record<string, unknown> | null;
  /** What the body asks for (when it was not read: only what the URL says). */
  info: RequestInfo;
  model: string | null;
  shape: BodyShape;
}

/**
 * Per-request facts, keyed by the init object (or the Request), so that several wrappers around
 * one call parse its body once. Never stored on the request itself.
 */
const cache = new WeakMap<object, CallFacts | null>();

function keyOf(input: FetchInput, init: RequestInit | undefined): object | null {
  if (init) return init;
  return typeof input === 'object' && !(input instanceof URL) ? input : null;
}

/**
 * Reads an LLM call from fetch arguments without consuming anything, by the meter's own path
 * (`detectCall`: the same adapters, body cap and `isLlmCall` rule). A `Request` body is not read
 * (it would have to be cloned); such calls get facts without a body.
 */
export function callFacts(input: FetchInput, init?: RequestInit): CallFacts | null {
  const key = keyOf(input, init);
  if (key && cache.has(key)) return cache.get(key) ?? null;
  const facts = readFacts(input, init);
  if (key) cache.set(key, facts);
  return facts;
}

function readFacts(input: FetchInput, init: RequestInit | undefined): CallFacts | null {
  const call = detectCall(input, init, DEFAULT_ADAPTERS, DEFAULT_MAX_REQUEST_BODY_BYTES);
  if (!call) return null;
  const { detection, info } = call;
  return {
    url: call.url,
    headers: requestHeaders(input, init),
    detection,
    adapter: detection.adapter,
    provider: detection.provider,
    body: call.read.kind === 'json' ? call.read.value : null,
    info,
    model: info.model ?? detection.urlModel,
    shape: detection.adapter.bodyShape(detection),
  };
}

/** The caller's abort signal, from `init` or a `Request`. */
export function signalOf(input: FetchInput, init: RequestInit | undefined): AbortSignal | undefined {
  if (init?.signal) return init.signal;
  return typeof input === 'object' && !(input instanceof URL) ? input.signal : undefined;
}
