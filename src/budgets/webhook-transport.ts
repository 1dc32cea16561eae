import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { Agent } from 'undici';
import { undici } from '../net/undici.js';
import { isWebhookAddressError, type Lookup, resolveChecked, webhookHost } from './webhook-url.js';

/**
 * Sends a webhook POST. The connection goes to an address that was judged in the same lookup
 * (undici's connector hands `lookup` to `net.connect` / `tls.connect`, and Node connects to
 * what it answers), so the name cannot resolve to a public address for the check and a private
 * one for the connection. TLS still verifies the host name (undici sets `servername` from the
 * URL). Redirects are never followed, and the receiver's body is never read past a small cap
 * nor reported: a delivery says its status code and a fixed word, nothing the receiver wrote.
 */

/** What a delivery attempt ended with; `error` is one of a few fixed words, never a message. */
type SendResult =
  | { status: number; error: null; retryAfter: { ms: string | null; header: string | null } }
  | { status: null; error: 'refused_address' | 'timeout' | 'network'; permanent: boolean };

interface WebhookTransportOptions {
  allowPrivate: boolean;
  lookup?: Lookup | undefined;
  timeoutMs: number;
  /** A fetch to use instead of the pinned connection (tests, a host's own transport). */
  fetch?: ((url: string, init: RequestInit) => Promise<Response>) | undefined;
}

export interface WebhookTransport {
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult>;
  close(): Promise<void>;
}

/** Bytes of a receiver's answer drained so the connection can be reused; the rest is dropped. */
const DRAIN_LIMIT = 16 * 1024;

/** A `net.connect` lookup that resolves once, judges every address and answers only those. */
function pinnedLookup(options: { allowPrivate: boolean; lookup?: Lookup | undefined }): LookupFunction {
  return (hostname: string, lookupOptions: LookupOptions, callback) => {
    resolveChecked(hostname, options).then(
      (all) => {
        const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : 0;
        const addresses: LookupAddress[] = all.filter((a) => wanted === 0 || a.family === wanted);
        if (addresses.length === 0) {
          const error = Object.assign(new Error(`No address of family ${wanted} for the webhook host.`), {
            code: 'ENOTFOUND',
          });
          callback(error, '', 0);
        } else if (lookupOptions.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}

function failure(error: unknown): SendResult {
  if (isWebhookAddressError(error)) return { status: null, error: 'refused_address', permanent: true };
  const timeout = (error as { name?: string } | null)?.name === 'TimeoutError';
  return { status: null, error: timeout ? 'timeout' : 'network', permanent: false };
}

/**
 * The dispatcher deliveries use: every connection resolves through `pinnedLookup`. `tls` adds
 * TLS options (a private CA); the server name is the URL's host, as undici sets it.
 */
export function createPinnedAgent(
  options: { allowPrivate: boolean; lookup?: Lookup | undefined; timeoutMs: number },
  tls: { ca?: string | Buffer } = {},
): Agent {
  return new (undici().Agent)({
    connect: { ...tls, lookup: pinnedLookup(options), timeout: options.timeoutMs },
    // One delivery at a time per receiver is plenty; idle sockets go soon.
    connections: 4,
    keepAliveTimeout: 4_000,
  });
}

export function createWebhookTransport(options: WebhookTransportOptions): WebhookTransport {
  const agent = options.fetch ? null : createPinnedAgent(options);

  /** A host's own fetch cannot be pinned: the name is judged first, then fetched. */
  async function viaFetch(
    url: string,
    host: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<SendResult> {
    if (!options.allowPrivate) await resolveChecked(host, options);
    const res = await options.fetch!(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    await res.body?.cancel().catch(() => undefined);
    return {
      status: res.status,
      error: null,
      retryAfter: { ms: res.headers.get('retry-after-ms'), header: res.headers.get('retry-after') },
    };
  }

  async function viaAgent(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const signal = AbortSignal.timeout(options.timeoutMs);
    // undici's request follows no redirects: a 3xx is an answer like any other.
    const res = await undici().request(url, { method: 'POST', headers, body, dispatcher: agent!, signal });
    await res.body.dump({ limit: DRAIN_LIMIT, signal }).catch(() => undefined);
    const one = (name: string) => {
      const value = res.headers[name];
      return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
    };
    return {
      status: res.statusCode,
      error: null,
      retryAfter: { ms: one('retry-after-ms'), header: one('retry-after') },
    };
  }

  return {
    async send(url, headers, body) {
      // An IP literal is never looked up, so it is judged here; a name is judged as it connects.
      const parsed = webhookHost(url, options.allowPrivate);
      if ('problem' in parsed) return { status: null, error: 'refused_address', permanent: true };
      try {
        return await (agent ? viaAgent(url, headers, body) : viaFetch(url, parsed.host, headers, body));
      } catch (error) {
        return failure(error);
      }
    },
    async close() {
      await agent?.close().catch(() => undefined);
    },
  };
}
