/**
 * The JSON API of the server that served the page, read with the bearer token the user typed.
 * The token is kept in sessionStorage: this tab only, gone when it closes.
 */

const TOKEN_KEY = 'llm-meter.token';

let token = sessionStorage.getItem(TOKEN_KEY) || '';

/** The server refused the token (or wants one). */
export class AuthError extends Error {}

export const hasToken = () => token !== '';

export function setToken(value) {
  token = value;
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
}

/** GET `path` (relative to the page) with `params`; an array value repeats its key. */
export async function api(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
  }
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const qs = query.toString();
  const res = await fetch(qs ? `${path}?${qs}` : path, {
    headers,
    cache: 'no-store',
    signal: AbortSignal.timeout(20_000),
  });
  if (res.status === 401) throw new AuthError('unauthorized');
  if (!res.ok) {
    let message = `HTTP ${res.status}`;
    try {
      message = (await res.json()).error.message || message;
    } catch {}
    throw new Error(`${path}: ${message}`);
  }
  return res.json();
}
