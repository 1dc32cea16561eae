/**
 * Retry timing for webhook delivery, as pure functions: exponential backoff with full jitter
 * (AWS Architecture Blog, "Exponential Backoff And Jitter"), capped, and the receiver's
 * Retry-After honoured when it asks for longer.
 */
import { backoffDelay as fullJitter } from '../common/retry-timing.js';

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 15 * 60_000, maxAttempts: 12 };

/** Delay before attempt `attempt + 1`, where `attempt` is the number of attempts made (≥ 1). */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number,
  retryAfterMs?: number | null,
): number {
  const jittered = fullJitter(attempt, { baseDelayMs: policy.baseMs, maxDelayMs: policy.maxMs }, random);
  return retryAfterMs != null && retryAfterMs > jittered ? Math.min(retryAfterMs, policy.maxMs) : jittered;
}

/** Whether a delivery outcome should be retried: network errors, timeouts, 408, 429 and 5xx. */
export function shouldRetry(status: number | null): boolean {
  if (status === null) return true;
  return status === 408 || status === 429 || status >= 500;
}
