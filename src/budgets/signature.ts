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

/** Verify a signature header; `toleranceS` bounds the age of the timestamp. */
export function verify(
  header: string | null | undefined,
  secret: string,
  body: string,
  nowSeconds: number,
  toleranceS = 300,
): boolean {
  if (!header) return false;
  let t: number | null = null;
  const macs: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.split('=', 2);
    if (k === 't' && v && /^\d+$/.test(v)) t = Number(v);
    else if (k === 'v1' && v) macs.push(v);
  }
  if (t === null || Math.abs(nowSeconds - t) > toleranceS) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return macs.some((mac) => {
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
