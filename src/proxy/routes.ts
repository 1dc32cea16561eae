/** Where a gateway request goes: the upstream's name and the full upstream URL. */
export interface Route {
  upstream: string;
  url: string;
}

/** A request target the gateway will not forward: 400 for a hostile one, 404 for one nobody serves. */
interface RouteRefusal {
  status: 400 | 404;
  message: string;
}

export type Routing = { route: Route } | { refused: RouteRefusal };

const bad = (message: string): { refused: RouteRefusal } => ({ refused: { status: 400, message } });

/**
 * Routing by path. First a path prefix naming an upstream (`/openai/v1/chat/completions` →
 * upstream `openai`, path `/v1/chat/completions`), then the provider's own path shape, so that an
 * SDK whose base URL is the gateway's root (or `…/v1`) works unchanged.
 *
 * The path after the prefix is appended to the upstream's base URL, so it must not be able to
 * leave it: dot segments (`..`, and `%2e%2e`, which the WHATWG URL parser undici uses treats
 * alike) are resolved here and refused when they climb above the prefix; a segment that hides
 * dot segments behind encoded slashes (`..%2f..`) is refused too, since a server behind the
 * upstream may decode them. Only origin-form targets (`/path?query`, RFC 9112 §3.2.1) are
 * accepted: absolute-form (`http://host/x`), authority-form and asterisk-form would otherwise be
 * glued onto the upstream's origin. Backslashes, which the URL parser reads as slashes, are refused.
 */
export function resolveRoute(target: string, upstreams: ReadonlyMap<string, URL>): Routing {
  if (!target.startsWith('/')) return bad('The request target must be a path (origin-form).');
  if (target.includes('#')) return bad('The request target must not have a fragment.');
  const q = target.indexOf('?');
  const path = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q) : '';
  if (path.includes('\\') || /%5c/i.test(path)) return bad('The request path must not contain backslashes.');

  const segments = path.slice(1).split('/');
  const first = segments[0]!;
  if (isDotSegment(first)) return bad('The request path must not start with a dot segment.');
  if (/%2f/i.test(first)) return bad('The request path must not encode slashes in its first segment.');
  const name = decodeSegment(first);
  if (name !== null && upstreams.has(name)) {
    const rest = resolveDots(segments.slice(1));
    if (rest === null) return bad(`The request path must stay under the upstream "${name}".`);
    return join(name, upstreams.get(name)!, rest, query);
  }
  const resolved = resolveDots(segments);
  if (resolved === null) return bad('The request path must not climb above its root.');
  const shape = byShape(resolved);
  const base = shape === null ? undefined : upstreams.get(shape);
  if (!base || !shape) return { refused: { status: 404, message: 'No upstream serves this path.' } };
  return join(shape, base, resolved, query);
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** `.` or `..`, percent-encoded or not (WHATWG URL "single-dot" and "double-dot" segments). */
function isDotSegment(segment: string): boolean {
  const s = segment.replace(/%2e/gi, '.');
  return s === '.' || s === '..';
}

/**
 * The path of `segments` with dot segments resolved (RFC 3986 §5.2.4), the others kept as sent;
 * null when a `..` would climb above the first segment, or when a segment hides a dot segment
 * behind an encoded slash.
 */
function resolveDots(segments: string[]): string | null {
  const out: string[] = [];
  let trailingSlash = false;
  for (const segment of segments) {
    trailingSlash = false;
    if (isDotSegment(segment)) {
      trailingSlash = true;
      if (segment.replace(/%2e/gi, '.') === '..' && out.pop() === undefined) return null;
      continue;
    }
    if (/%2f/i.test(segment) && segment.split(/%2f/i).some(isDotSegment)) return null;
    out.push(segment);
  }
  return `/${out.join('/')}${trailingSlash && out.length > 0 ? '/' : ''}`;
}

/** Provider path shapes: Anthropic `/v1/messages`, Gemini `/v1beta/…` or `models/{m}:{method}`, Ollama `/api/…`, OpenAI `/v1/…`. */
function byShape(path: string): string | null {
  if (/^\/v1\/messages(?:\/|$)/.test(path) || path === '/v1/complete') return 'anthropic';
  if (/^\/v1(?:alpha|beta)\d*\//.test(path) || /\/models\/[^/]+:[A-Za-z]+$/.test(path)) return 'gemini';
  if (path.startsWith('/api/')) return 'ollama';
  if (path.startsWith('/v1/')) return 'openai';
  return null;
}

function join(upstream: string, base: URL, path: string, query: string): Routing {
  const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  const url = `${base.origin}${prefix}${path}${query}`;
  // The same check as the URL parser undici will apply, in case it reads the target otherwise.
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return bad('The request target is not a valid path.');
  }
  if (parsed.origin !== base.origin || !`${parsed.pathname}/`.startsWith(`${prefix}/`)) {
    return bad(`The request path must stay under the upstream "${upstream}".`);
  }
  return { route: { upstream, url } };
}
