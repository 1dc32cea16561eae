/**
 * The first thing every request meets: who may talk to the server at all, under which `Host`
 * name, and whether a browser on another site may make it change something.
 *
 * Without an API token the server is for this machine only. A peer on another machine is
 * refused; so is any `Host` other than a loopback name, which is what stops DNS rebinding (a
 * page whose own name now resolves to 127.0.0.1 still sends that name); so is a write whose
 * `Origin` is not the server's own. With a token, bearer auth is the defence (a browser cannot
 * attach the header cross-origin without a CORS preflight, which this server never grants), so
 * `Host` is not checked: reverse proxies rewrite it. Writes a browser marks as coming from
 * another site (`Sec-Fetch-Site`) are refused either way: no legitimate client sends one, as the
 * server offers no CORS, and it keeps a token pasted into some other page from being usable there.
 *
 * The answers never quote the offending header: a JSON error naming it is enough.
 */
import type { RequestHandler } from 'express';
import { isLoopbackAddress } from '../net/loopback.js';
import { acceptsHost } from '../net/unauthenticated.js';
import { HttpError } from './http-error.js';

interface PerimeterOptions {
  /** Bearer auth guards /v1: the `Host` and peer checks are off. */
  tokenConfigured: boolean;
  /** No token, yet served beyond loopback on purpose: any peer, any IP-literal `Host`. */
  insecureNoAuth: boolean;
}

/** Methods that change nothing (RFC 9110 §9.2.1), so a cross-site one does no harm. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).origin === new URL(`http://${host}`).origin;
  } catch {
    // `Origin: null` (sandboxed frames, file: pages) and anything unparsable.
    return false;
  }
}

export function perimeter({ tokenConfigured, insecureNoAuth }: PerimeterOptions): RequestHandler {
  return (req, _res, next) => {
    if (!tokenConfigured) {
      if (!insecureNoAuth && !isLoopbackAddress(req.socket.remoteAddress)) {
        next(
          new HttpError(
            403,
            'forbidden',
            'This server has no API token, so it answers clients on this machine only.',
          ),
        );
        return;
      }
      if (!acceptsHost(req.headers.host, insecureNoAuth)) {
        next(
          new HttpError(
            421,
            'misdirected',
            insecureNoAuth
              ? 'The `Host` header must be localhost or an IP address: this server has no API token.'
              : 'The `Host` header must be a loopback name (localhost, 127.0.0.1, [::1]): this server has no API token.',
            'host',
          ),
        );
        return;
      }
    }
    if (!SAFE_METHODS.has(req.method)) {
      const site = req.headers['sec-fetch-site'];
      if (site === 'cross-site' || site === 'same-site') {
        next(
          new HttpError(
            403,
            'forbidden',
            'A browser sent this write from another site (`Sec-Fetch-Site`); it is refused.',
            'sec-fetch-site',
          ),
        );
        return;
      }
      const origin = req.headers.origin;
      if (!tokenConfigured && origin !== undefined && !sameOrigin(origin, req.headers.host)) {
        next(
          new HttpError(
            403,
            'forbidden',
            "A write from another origin (`Origin` is not this server's own) is refused.",
            'origin',
          ),
        );
        return;
      }
    }
    next();
  };
}
