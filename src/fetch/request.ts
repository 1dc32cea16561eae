/**
 * Reading a fetch call's target and body without consuming anything the caller will send.
 */
import { concatBytes } from './bytes.js';

export type FetchInput = string | URL | Request;

/** The request body the meter reads at most unless told otherwise (`maxRequestBodyBytes`). */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024;
export type FetchLike = (input: FetchInput, init?: RequestInit) => Promise<Response>;

/** Where a metered call goes: known once per URL (see wrap.ts knownTargets). */
export interface Endpoint {
  url: URL;
  /** `server.address`: the URL's host name, or null. */
  address: string | null;
  /** `server.port`: explicit, or the scheme's default. */
  port: number | null;
}

export interface Target extends Endpoint {
  /** The request's headers, copied on first use: most calls never need them. */
  readonly headers: Headers;
}

export function endpointOf(url: URL): Endpoint {
  const port = url.port
    ? Number(url.port)
    : url.protocol === 'https:'
      ? 443
      : url.protocol === 'http:'
        ? 80
        : null;
  return { url, address: url.hostname || null, port };
}

/** The URL of a POST as a string, without parsing it; null for any other method. */
export function postHref(input: FetchInput, init: RequestInit | undefined): string | null {
  const isRequest = typeof input === 'object' && !(input instanceof URL);
  const method = init?.method ?? (isRequest ? (input as Request).method : 'GET');
  if (method !== 'POST' && method.toUpperCase() !== 'POST') return null;
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

export function parseUrl(href: string): URL | null {
  try {
    return new URL(href);
  } catch {
    return null;
  }
}

/** The headers a call is made with: those of `init`, else those of the `Request`. */
function headersOf(input: FetchInput, init: RequestInit | undefined): HeadersInit | undefined {
  return init?.headers ?? (typeof input === 'object' && !(input instanceof URL) ? input.headers : undefined);
}

export function requestHeaders(input: FetchInput, init: RequestInit | undefined): Headers {
  return new Headers(headersOf(input, init));
}

/** A POST's target. */
export function createTarget(endpoint: Endpoint, input: FetchInput, init: RequestInit | undefined): Target {
  return new LazyTarget(endpoint, headersOf(input, init));
}

class LazyTarget implements Target {
  readonly url: URL;
  readonly address: string | null;
  readonly port: number | null;
  #source: HeadersInit | undefined;
  #headers: Headers | null = null;
  constructor(endpoint: Endpoint, source: HeadersInit | undefined) {
    this.url = endpoint.url;
    this.address = endpoint.address;
    this.port = endpoint.port;
    this.#source = source;
  }
  get headers(): Headers {
    if (this.#headers === null) {
      this.#headers = new Headers(this.#source);
      this.#source = undefined;
    }
    return this.#headers;
  }
}

export type BodyRead =
  | { kind: 'json'; text: string; value: Record<string, unknown>; fromInit: boolean }
  | { kind: 'unparsed'; reason: 'absent' | 'stream' | 'form' | 'too_large' | 'not_json' | 'unreadable' };

const decoder = new TextDecoder();

/**
 * The request body as JSON, when it can be read without consuming it: strings and byte
 * buffers from `init.body`, or a clone of a `Request`'s body under the size cap. Streams,
 * FormData, Blobs and bodies over `maxBytes` are left alone.
 */
export async function readJsonBody(
  input: FetchInput,
  init: RequestInit | undefined,
  maxBytes: number,
): Promise<BodyRead> {
  return readInitBody(input, init, maxBytes) ?? readRequestBody(input as Request, maxBytes);
}

/**
 * `readJsonBody` without a promise where none is needed: the answer for everything but a
 * `Request` whose body has to be read from a clone, for which it returns null.
 */
export function readInitBody(
  input: FetchInput,
  init: RequestInit | undefined,
  maxBytes: number,
): BodyRead | null {
  const body = init?.body;
  let text: string;
  if (body === undefined || body === null) {
    if (typeof input === 'object' && !(input instanceof URL) && input.body) return null;
    return ABSENT;
  }
  if (typeof body === 'string') {
    // Each UTF-16 unit is at least one byte: a cheap lower bound before measuring.
    if (body.length > maxBytes || Buffer.byteLength(body) > maxBytes) return TOO_LARGE;
    text = body;
  } else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes =
      body instanceof ArrayBuffer
        ? new Uint8Array(body)
        : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (bytes.byteLength > maxBytes) return TOO_LARGE;
    text = decoder.decode(bytes);
  } else if (typeof FormData !== 'undefined' && body instanceof FormData) {
    return { kind: 'unparsed', reason: 'form' };
  } else {
    return { kind: 'unparsed', reason: 'stream' };
  }
  return parseBody(text, maxBytes, true);
}

async function readRequestBody(input: Request, maxBytes: number): Promise<BodyRead> {
  // A Request built from a string or bytes carries no content-length header: its size is
  // only known by reading, so the clone is read up to the cap and no further.
  const declared = input.headers.get('content-length');
  if (declared !== null && !(Number(declared) <= maxBytes)) return TOO_LARGE;
  const type = input.headers.get('content-type');
  if (type !== null && !/json/i.test(type)) {
    return { kind: 'unparsed', reason: /multipart\/form-data/i.test(type) ? 'form' : 'not_json' };
  }
  let text: string;
  try {
    const bytes = await readCapped(input.clone().body!, maxBytes);
    if (bytes === null) return TOO_LARGE;
    text = decoder.decode(bytes);
  } catch {
    return { kind: 'unparsed', reason: 'unreadable' };
  }
  return parseBody(text, maxBytes, false);
}

const ABSENT: BodyRead = { kind: 'unparsed', reason: 'absent' };
const TOO_LARGE: BodyRead = { kind: 'unparsed', reason: 'too_large' };
const NOT_JSON: BodyRead = { kind: 'unparsed', reason: 'not_json' };

function parseBody(text: string, maxBytes: number, fromInit: boolean): BodyRead {
  if (text.length > maxBytes) return TOO_LARGE;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return NOT_JSON;
  return { kind: 'json', text, value: value as Record<string, unknown>, fromInit };
}

/** The whole stream if it is at most `maxBytes`, else null (and the stream is cancelled). */
async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array | null> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      // Not awaited: a tee branch's cancel settles only once the other branch is done too.
      reader.cancel().catch(() => {});
      return null;
    }
    parts.push(value);
  }
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}
