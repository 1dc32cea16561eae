/**
 * Who may use a gateway that requires no gateway key. Without keys, anyone who reaches it makes
 * calls with the provider keys it holds (or free use of a key-less upstream such as Ollama), and
 * puts rows into the usage database and budgets with whatever attribution they like. So it is
 * for this machine only: it listens on loopback unless `insecureNoAuth`, and it refuses the
 * requests a web page open in a local browser could make (src/net/unauthenticated.ts). With
 * keys, the key is the defence (a browser cannot attach one cross-site without a CORS preflight,
 * which a key-less OPTIONS fails with 401), so none of this applies: reverse proxies rewrite Host.
 *
 * The answers never quote the offending header.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { InvalidOptionError } from '../errors/errors.js';
import { isLoopbackBindHost } from '../net/loopback.js';
import { acceptsHost, crossSiteHeader } from '../net/unauthenticated.js';

interface PerimeterRefusal {
  status: 421 | 403;
  type: string;
  message: string;
}

/**
 * Checks where a gateway without keys may listen: throws for a host beyond loopback, or, with
 * `insecureNoAuth`, says on `warn` that it is open.
 */
export function checkBindHost(host: string, insecureNoAuth: boolean, warn: (message: string) => void): void {
  if (isLoopbackBindHost(host)) return;
  if (!insecureNoAuth) {
    throw new InvalidOptionError(
      `Refusing \`host\` ${JSON.stringify(host)} without \`requireKey\`: every machine that can reach ` +
        'the gateway could make calls through it with its upstreams and put them in the usage ' +
        'database and budgets under any name. Set `requireKey` with `keys`, listen on a loopback ' +
        '`host` (127.0.0.1, ::1, localhost), or pass `insecureNoAuth: true` to accept that.',
    );
  }
  warn(
    `llm-meter gateway: WARNING: listening on ${JSON.stringify(host)} with no gateway keys ` +
      '(insecureNoAuth): anyone who can reach it can make calls through it and record usage under any name.',
  );
}

/** Why a gateway without keys refuses this request, or null when it may be served. */
export function perimeterRefusal(
  headers: IncomingHttpHeaders,
  insecureNoAuth: boolean,
): PerimeterRefusal | null {
  if (!acceptsHost(headers.host, insecureNoAuth)) {
    return {
      status: 421,
      type: 'invalid_request_error',
      message: insecureNoAuth
        ? 'The `Host` header must be localhost or an IP address: this gateway requires no key.'
        : 'The `Host` header must be a loopback name (localhost, 127.0.0.1, [::1]): this gateway requires no key.',
    };
  }
  const header = crossSiteHeader(headers);
  if (header !== null) {
    return {
      status: 403,
      type: 'permission_error',
      message: `A browser sent this request from another site (\`${header === 'origin' ? 'Origin' : 'Sec-Fetch-Site'}\`); this gateway requires no key, so it is refused.`,
    };
  }
  return null;
}
