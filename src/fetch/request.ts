/**
 * Reading a fetch call's target and body without consuming anything the caller will send.
 */

export type FetchInput = string | URL | Request;
export type FetchLike = (input: FetchInput, init?: RequestInit) => Promise<Response>;

export interface Target {
  url: URL;
  method: string;
  headers: Headers;
}

/** Cheap: no body work. Returns null for anything that is not a parseable URL. */
export function readTarget(input: FetchInput, init: RequestInit | undefined): Target | null {
  const isRequest = typeof input === 'object' && !(input instanceof URL);
  const method = (init?.method ?? (isRequest ? (input as Request).method : 'GET')).toUpperCase();
  if (method !== 'POST') return null;
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL(input.url);
  } catch {
    return null;
  }
  const headers = new Headers(init?.headers ?? (isRequest ? (input as Request).headers : undefined));
  return { url, method, headers };
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
  const body = init?.body;
  let text: string | null = null;
  let fromInit = true;
  if (body === undefined || body === null) {
    if (typeof input === 'object' && !(input instanceof URL) && input.body) {
      fromInit = false;
      // A Request built from a string or bytes carries no content-length header: its size is
      // only known by reading, so the clone is read up to the cap and no further.
      const declared = input.headers.get('content-length');
      if (declared !== null && !(Number(declared) <= maxBytes))
        return { kind: 'unparsed', reason: 'too_large' };
      const type = input.headers.get('content-type');
      if (type !== null && !/json/i.test(type)) {
        return { kind: 'unparsed', reason: /multipart\/form-data/i.test(type) ? 'form' : 'not_json' };
      }
      try {
        const bytes = await readCapped(input.clone().body!, maxBytes);
        if (bytes === null) return { kind: 'unparsed', reason: 'too_large' };
        text = decoder.decode(bytes);
      } catch {
        return { kind: 'unparsed', reason: 'unreadable' };
      }
    } else {
      return { kind: 'unparsed', reason: 'absent' };
    }
  } else if (typeof body === 'string') {
    // Each UTF-16 unit is at least one byte: a cheap lower bound before measuring.
    if (body.length > maxBytes || Buffer.byteLength(body) > maxBytes)
      return { kind: 'unparsed', reason: 'too_large' };
    text = body;
  } else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes =
      body instanceof ArrayBuffer
        ? new Uint8Array(body)
        : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (bytes.byteLength > maxBytes) return { kind: 'unparsed', reason: 'too_large' };
    text = decoder.decode(bytes);
  } else if (typeof FormData !== 'undefined' && body instanceof FormData) {
    return { kind: 'unparsed', reason: 'form' };
  } else {
    return { kind: 'unparsed', reason: 'stream' };
  }
  if (text.length > maxBytes) return { kind: 'unparsed', reason: 'too_large' };
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return { kind: 'unparsed', reason: 'not_json' };
    return { kind: 'json', text, value: value as Record<string, unknown>, fromInit };
  } catch {
    return { kind: 'unparsed', reason: 'not_json' };
  }
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
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
