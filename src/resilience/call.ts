import type { FetchInput, FetchLike } from '../fetch/request.js';
import { DEFAULT_ADAPTERS, detect, isLlmCall } from '../providers/registry.js';
import type { BodyShape, Detection, ProviderAdapter } from '../providers/types.js';
import type { RequestInfo } from '../record.js';

export type { FetchInput, FetchLike };

/** What the resilience wrappers need to know about one fetch call: who it is for and what it asks. */
export interface CallFacts {
  url: URL;
  method: string;
  headers: Headers;
  detection: Detection;
  adapter: ProviderAdapter;
  provider: string;
  /** The parsed JSON body, or null when it is not a readable JSON object (a stream, FormData...). */
  body: Record<string, unknown> | null;
  info: RequestInfo | null;
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

const decoder = new TextDecoder();

function bodyText(body: unknown): string | null {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return decoder.decode(body);
  if (body instanceof ArrayBuffer) return decoder.decode(new Uint8Array(body));
  return null;
}

/**
 * Reads an LLM call from fetch arguments without consuming anything: the URL picks the wire
 * format, a string or byte body in `init` is parsed. A `Request` body is not read (it would
 * have to be cloned); such calls get facts without a body.
 */
export function callFacts(input: FetchInput, init?: RequestInit): CallFacts | null {
  const key = keyOf(input, init);
  if (key && cache.has(key)) return cache.get(key) ?? null;
  const facts = readFacts(input, init);
  if (key) cache.set(key, facts);
  return facts;
}

function readFacts(input: FetchInput, init: RequestInit | undefined): CallFacts | null {
  const isRequest = typeof input === 'object' && !(input instanceof URL);
  const method = (init?.method ?? (isRequest ? (input as Request).method : 'GET')).toUpperCase();
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL(input.url);
  } catch {
    return null;
  }
  const headers = new Headers(init?.headers ?? (isRequest ? (input as Request).headers : undefined));
  let detection: Detection | null;
  try {
    detection = detect(DEFAULT_ADAPTERS, url, method, headers);
  } catch {
    detection = null;
  }
  if (!detection) return null;
  let body: Record<string, unknown> | null = null;
  const text = bodyText(init?.body);
  if (text !== null) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        body = parsed as Record<string, unknown>;
      }
    } catch {
      body = null;
    }
  }
  let info: RequestInfo | null = null;
  if (body) {
    try {
      info = detection.adapter.parseRequest(body, detection);
    } catch {
      info = null;
    }
  }
  // The meter's rule: a call it lets pass unmetered is not the resilience wrappers' either.
  if (!isLlmCall(detection, body ? info : null)) return null;
  return {
    url,
    method,
    headers,
    detection,
    adapter: detection.adapter,
    provider: detection.provider,
    body,
    info,
    model: info?.model ?? detection.urlModel,
    shape: detection.adapter.bodyShape(detection),
  };
}

/** The caller's abort signal, from `init` or a `Request`. */
export function signalOf(input: FetchInput, init: RequestInit | undefined): AbortSignal | undefined {
  if (init?.signal) return init.signal;
  return typeof input === 'object' && !(input instanceof URL) ? input.signal : undefined;
}
