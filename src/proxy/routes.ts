/** Where a gateway request goes: the upstream's name and the full upstream URL. */
export interface Route {
  upstream: string;
  url: string;
}

/**
 * Routing by path. First a path prefix naming an upstream (`/openai/v1/chat/completions` →
 * upstream `openai`, path `/v1/chat/completions`), then the provider's own path shape, so that an
 * SDK whose base URL is the gateway's root (or `…/v1`) works unchanged.
 */
export function resolveRoute(pathAndQuery: string, upstreams: ReadonlyMap<string, URL>): Route | null {
  const q = pathAndQuery.indexOf('?');
  const path = q >= 0 ? pathAndQuery.slice(0, q) : pathAndQuery;
  const query = q >= 0 ? pathAndQuery.slice(q) : '';
  const slash = path.indexOf('/', 1);
  const first = decodeSegment(slash >= 0 ? path.slice(1, slash) : path.slice(1));
  if (first !== null && upstreams.has(first)) {
    return join(first, upstreams.get(first)!, slash >= 0 ? path.slice(slash) : '/', query);
  }
  const name = byShape(path);
  const base = name === null ? undefined : upstreams.get(name);
  return base && name ? join(name, base, path, query) : null;
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Provider path shapes: Anthropic `/v1/messages`, Gemini `/v1beta/…` or `models/{m}:{method}`, Ollama `/api/…`, OpenAI `/v1/…`. */
function byShape(path: string): string | null {
  if (/^\/v1\/messages(?:\/|$)/.test(path) || path === '/v1/complete') return 'anthropic';
  if (/^\/v1(?:alpha|beta)\d*\//.test(path) || /\/models\/[^/]+:[A-Za-z]+$/.test(path)) return 'gemini';
  if (path.startsWith('/api/')) return 'ollama';
  if (path.startsWith('/v1/')) return 'openai';
  return null;
}

function join(upstream: string, base: URL, path: string, query: string): Route {
  const prefix = base.pathname.endsWith('/') ? base.pathname.slice(0, -1) : base.pathname;
  return { upstream, url: `${base.origin}${prefix}${path}${query}` };
}
