import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { AttributionInput } from '../attribution.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are never forwarded, nor
 * are headers the `connection` header names. `host` and `content-length` are the upstream
 * request's own (undici sets them); `expect` is not supported by undici.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
]);
const REQUEST_DROPPED = new Set([
  ...HOP_BY_HOP,
  'host',
  'content-length',
  'expect',
  // undici negotiates the encodings it can decode (gzip, deflate); see forwardHeaders.
  'accept-encoding',
]);

const ATTRIBUTION_PREFIX = 'x-llm-meter-';

function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/**
 * Request headers for the upstream: everything the client sent (its API key included, untouched)
 * but hop-by-hop headers and the gateway's own `x-llm-meter-*` attribution headers.
 */
export function upstreamHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const named = headers.connection ? connectionTokens(headers.connection) : null;
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (REQUEST_DROPPED.has(name) || name.startsWith(ATTRIBUTION_PREFIX) || named?.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Response headers for the client. undici's fetch hands over the body decoded, so a
 * `content-encoding` and the encoded `content-length` no longer describe it: both go, and the
 * body is sent chunked. (Asking upstream for `identity` instead would save the decode but lose
 * compression on the long internet hop, where it pays; the client hop is usually local.)
 */
export function clientHeaders(headers: Headers): OutgoingHttpHeaders {
  const named = connectionTokens(headers.get('connection') ?? undefined);
  const encoded = headers.has('content-encoding');
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (encoded && (name === 'content-encoding' || name === 'content-length')) continue;
    if (name === 'set-cookie') continue;
    out[name] = value;
  }
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) out['set-cookie'] = cookies;
  return out;
}

function single(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v;
}

/**
 * `x-llm-meter-tags`: a JSON object of strings (`{"env":"prod"}`) or `k=v,k2=v2` pairs. Values
 * may be percent-encoded in the pair form. Anything else is ignored: attribution never fails a call.
 */
export function parseTags(value: string | undefined): Record<string, string> {
  if (!value) return {};
  const text = value.trim();
  const tags: Record<string, string> = {};
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed)) {
          if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') tags[k] = String(v);
        }
      }
    } catch {
      // Not JSON after all: no tags.
    }
    return tags;
  }
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    let v = pair.slice(eq + 1).trim();
    try {
      v = decodeURIComponent(v);
    } catch {
      // Kept as sent.
    }
    if (key) tags[key] = v;
  }
  return tags;
}

/**
 * Attribution from `x-llm-meter-user`, `-project`, `-feature` and `-tags`. A tag named like one of
 * the three fields is dropped: it would set that field (attribution takes them from one flat
 * object) past whatever decides the field itself.
 */
export function attributionFrom(headers: IncomingHttpHeaders): AttributionInput {
  const input: AttributionInput = parseTags(single(headers['x-llm-meter-tags']));
  delete input.user;
  delete input.project;
  delete input.feature;
  const user = single(headers['x-llm-meter-user']);
  const project = single(headers['x-llm-meter-project']);
  const feature = single(headers['x-llm-meter-feature']);
  if (user !== undefined) input.user = user;
  if (project !== undefined) input.project = project;
  if (feature !== undefined) input.feature = feature;
  return input;
}
