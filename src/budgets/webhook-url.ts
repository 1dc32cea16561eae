import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isPrivateAddress } from './addresses.js';

/**
 * Webhook URLs are fetched by the server, so they are checked against SSRF: http(s) only, no
 * credentials, and no private, loopback, link-local or otherwise internal address unless the
 * operator allows private webhooks. A host name is judged by what it resolves to, and the
 * delivery connects to exactly the addresses that were judged (webhook-transport.ts), so a
 * name that resolves differently the second time cannot steer a delivery inside.
 */

interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has. Default: `dns.lookup` with `all: true`. */
export type Lookup = (hostname: string) => Promise<readonly ResolvedAddress[]>;

const defaultLookup: Lookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

const REFUSED =
  'Expected `webhook_url` to point at a public address (private, loopback and link-local addresses are refused unless allowPrivateWebhooks is set).';

/** A resolved or literal address a webhook may not reach; `code` lets the transport tell it apart. */
class WebhookAddressError extends Error {
  override name = 'WebhookAddressError' as const;
  readonly code = 'ERR_LLM_METER_WEBHOOK_ADDRESS';
  constructor(message = REFUSED, options?: ErrorOptions) {
    super(message, options);
  }
}

export function isWebhookAddressError(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'ERR_LLM_METER_WEBHOOK_ADDRESS') return true;
  }
  return false;
}

/** The URL's host without IPv6 brackets, or a message naming what is wrong with the URL. */
export function webhookHost(raw: string, allowPrivate: boolean): { host: string } | { problem: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'Expected `webhook_url` to be an absolute URL.' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { problem: 'Expected `webhook_url` to use http or https.' };
  if (url.username || url.password) return { problem: 'Expected `webhook_url` without credentials.' };
  // The URL parser has already turned every IPv4 spelling (2130706433, 0x7f.1, 127.1) into
  // dotted quads and every IPv6 one into its canonical form; what is left is judged as is.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && isIP(host) && isPrivateAddress(host)) return { problem: REFUSED };
  return { host };
}

/**
 * Every address of `host` (an IP literal is its own), each judged; resolves only when all are
 * acceptable, so the caller can connect to any of them. Rejects with a WebhookAddressError.
 */
export async function resolveChecked(
  host: string,
  options: { allowPrivate: boolean; lookup?: Lookup | undefined },
): Promise<ResolvedAddress[]> {
  const family = isIP(host);
  if (family !== 0) {
    if (!options.allowPrivate && isPrivateAddress(host)) throw new WebhookAddressError();
    return [{ address: host, family }];
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = [...(await (options.lookup ?? defaultLookup)(host))];
  } catch (cause) {
    throw new WebhookAddressError('Expected `webhook_url` to have a resolvable host.', { cause });
  }
  if (addresses.length === 0)
    throw new WebhookAddressError('Expected `webhook_url` to have a resolvable host.');
  if (!options.allowPrivate && addresses.some((a) => isPrivateAddress(a.address))) {
    throw new WebhookAddressError();
  }
  return addresses;
}

/** Returns null when acceptable, else a message naming what is wrong (for a 400). */
export async function checkWebhookUrl(
  raw: string,
  options: { allowPrivate: boolean; lookup?: Lookup | undefined },
): Promise<string | null> {
  const parsed = webhookHost(raw, options.allowPrivate);
  if ('problem' in parsed) return parsed.problem;
  if (options.allowPrivate) return null;
  try {
    await resolveChecked(parsed.host, options);
    return null;
  } catch (error) {
    return error instanceof WebhookAddressError ? error.message : REFUSED;
  }
}
