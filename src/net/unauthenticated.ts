/**
 * What a listener without credentials answers, so that a web page cannot drive it through the
 * browser of someone on this machine: the reporting server without an API token, the gateway
 * without gateway keys, the gateway's metrics port without a token.
 *
 * DNS rebinding: a page whose own name now resolves to 127.0.0.1 still sends that name in
 * `Host`, so only loopback names are answered (and, when the listener is open beyond loopback
 * on purpose, IP literals, which no page can rebind). Cross-site requests: a page on another
 * site can send simple requests (a POST with a text/plain body needs no CORS preflight), and a
 * browser labels them with `Origin` and `Sec-Fetch-Site`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { hostnameOf, isIpLiteral, isLoopbackHostname } from './loopback.js';

/** Whether a listener without credentials answers a request sent with this `Host` header. */
export function acceptsHost(header: string | undefined, insecureNoAuth: boolean): boolean {
  const hostname = hostnameOf(header);
  return hostname !== null && (isLoopbackHostname(hostname) || (insecureNoAuth && isIpLiteral(hostname)));
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHostname(url.hostname);
  } catch {
    // `Origin: null` (sandboxed frames, file: pages) and anything unparsable.
    return false;
  }
}

/**
 * The header that shows a browser sent this request from a page that is not on this machine, or
 * null: `Sec-Fetch-Site: cross-site`, or an `Origin` whose host is not a loopback name. Pages on
 * localhost (a local app under development) are allowed.
 */
export function crossSiteHeader(headers: IncomingHttpHeaders): 'origin' | 'sec-fetch-site' | null {
  if (headers['sec-fetch-site'] === 'cross-site') return 'sec-fetch-site';
  const origin = headers.origin;
  if (origin !== undefined && !isLoopbackOrigin(origin)) return 'origin';
  return null;
}
