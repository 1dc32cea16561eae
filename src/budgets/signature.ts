import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures: `X-LLM-Meter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
 * the scheme Stripe popularised: the timestamp inside the MAC stops replays of old deliveries.
 */
export const SIGNATURE_HEADER = 'X-LLM-Meter-Signature';

export function sign(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export interface VerifyWebhookOptions {
  /** How far the signed timestamp may be from now, either way, in seconds. Default 300. */
  toleranceSec?: number;
  /** The current time, epoch milliseconds. Default `Date.now()`. */
  now?: number;
}

/** Longer than any header this library sends (a few signatures); anything longer is refused unread. */
const MAX_HEADER_LENGTH = 4096;
const TIMESTAMP = /^\d{1,12}$/;
const MAC = /^[0-9a-f]{64}$/i;

/** `t` and every `v1` of a header, in any order; null when it is not well-formed. */
function parseHeader(header: string): { t: number; macs: Buffer[] } | null {
  let t: number | null = null;
  const macs: Buffer[] = [];
  for (const part of header.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) return null;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      // Two timestamps would leave the receiver guessing which one was signed.
      if (t !== null || !TIMESTAMP.test(value)) return null;
      t = Number(value);
    } else if (key === 'v1') {
      if (MAC.test(value)) macs.push(Buffer.from(value, 'hex'));
    }
    // Other schemes (a future v2) are skipped, so a header carrying them still verifies.
  }
  return t === null || macs.length === 0 ? null : { t, macs };
}

/**
 * Whether `header` (the `X-LLM-Meter-Signature` value) signs `rawBody` — the exact bytes
 * received, before any JSON parsing — with `secret` (or any of several, while rotating), at a
 * time within `toleranceSec` of now. Never throws: a missing, malformed or stale header is
 * false. Several `v1` values are accepted (the sender signs with each secret it holds while
 * one is being rotated); MACs are compared in constant time.
 */
export function verifyWebhook(
  secret: string | readonly string[],
  header: string | null | undefined,
  rawBody: string | Uint8Array,
  options: VerifyWebhookOptions = {},
): boolean {
  try {
    if (typeof header !== 'string' || header.length > MAX_HEADER_LENGTH) return false;
    const parsed = parseHeader(header);
    if (!parsed) return false;
    const toleranceSec = options.toleranceSec ?? 300;
    const nowSec = (options.now ?? Date.now()) / 1000;
    if (!(Math.abs(nowSec - parsed.t) <= toleranceSec)) return false;
    const secrets = (typeof secret === 'string' ? [secret] : secret).filter(
      (s) => typeof s === 'string' && s.length > 0,
    );
    let ok = false;
    for (const s of secrets) {
      const expected = createHmac('sha256', s).update(`${parsed.t}.`).update(rawBody).digest();
      // Every MAC is compared, so the time taken does not say which one matched.
      for (const mac of parsed.macs) ok = timingSafeEqual(mac, expected) || ok;
    }
    return ok;
  } catch {
    return false;
  }
}
