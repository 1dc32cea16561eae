/**
 * Which fetch calls are LLM calls, and what they ask. The meter's wrapper and the resilience
 * wrappers decide by this one path (the same adapters, the same body cap, the same `isLlmCall`),
 * so that neither acts on a call the other lets pass.
 */
import { detect, isLlmCall } from '../providers/registry.js';
import type { Detection, ProviderAdapter } from '../providers/types.js';
import type { RequestInfo } from '../record.js';
import {
  type BodyRead,
  type FetchInput,
  parseUrl,
  postHref,
  readInitBody,
  requestHeaders,
} from './request.js';

/** What the request asks for when its body says nothing the adapter could read: the URL's part. */
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

/**
 * What a detected call asks for, or null when it is not an LLM call after all (it passes through
 * untouched). `onError`: the adapter failed to read a JSON body, which is then taken as unread.
 */
export function requestInfoOf(
  detection: Detection,
  read: BodyRead,
  onError?: (error: unknown) => void,
): RequestInfo | null {
  let info: RequestInfo | null = null;
  if (read.kind === 'json') {
    try {
      info = detection.adapter.parseRequest(read.value, detection);
    } catch (error) {
      onError?.(error);
      info = unparsedInfo(detection);
    }
  }
  if (!isLlmCall(detection, info)) return null;
  return info ?? unparsedInfo(detection);
}

/** An LLM call read from fetch arguments without consuming anything. */
interface DetectedCall {
  url: URL;
  detection: Detection;
  /** The body as read under the cap; a `Request`'s body is not read here (`unparsed`, `stream`). */
  read: BodyRead;
  info: RequestInfo;
}

const NOT_READ: BodyRead = { kind: 'unparsed', reason: 'stream' };
const UNREADABLE: BodyRead = { kind: 'unparsed', reason: 'unreadable' };

/**
 * The LLM call these fetch arguments make, or null, synchronously: a string or byte body in
 * `init` is parsed when it is at most `maxBytes`; a `Request`'s body (which would have to be
 * read from a clone) is taken as unread. Never throws: what cannot be read is not an LLM call.
 */
export function detectCall(
  input: FetchInput,
  init: RequestInit | undefined,
  adapters: readonly ProviderAdapter[],
  maxBytes: number,
): DetectedCall | null {
  let detection: Detection | null;
  let url: URL | null;
  try {
    const href = postHref(input, init);
    url = href === null ? null : parseUrl(href);
    detection = url && detect(adapters, url, 'POST', () => requestHeaders(input, init));
  } catch {
    return null;
  }
  if (!url || !detection) return null;
  let read: BodyRead;
  try {
    read = readInitBody(input, init, maxBytes) ?? NOT_READ;
  } catch {
    read = UNREADABLE;
  }
  const info = requestInfoOf(detection, read);
  return info ? { url, detection, read, info } : null;
}
