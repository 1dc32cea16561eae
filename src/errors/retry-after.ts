/**
 * Retry hints from response headers, as pure functions of their inputs.
 * `retry-after-ms` (OpenAI, Anthropic SDKs honour it) wins over `retry-after`, which is either
 * delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 */
export function parseRetryAfter(
  retryAfterMs: string | null,
  retryAfter: string | null,
  now: number = Date.now(),
): number | null {
  if (retryAfterMs !== null) {
    const ms = Number.parseFloat(retryAfterMs);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  if (retryAfter === null) return null;
  const trimmed = retryAfter.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number.parseFloat(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/**
 * Durations as OpenAI writes them in `x-ratelimit-reset-*`: "1s", "6m0s", "20ms", "1h2m3.5s".
 * A bare number is seconds (Azure's `x-rate-limit-reset-tokens`).
 */
export function parseResetDuration(value: string | null): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number.parseFloat(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = false;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    matched = true;
    consumed += m[0].length;
    const n = Number.parseFloat(m[1]!);
    const unit = m[2];
    total += unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  }
  return matched && consumed === text.length ? total : null;
}
