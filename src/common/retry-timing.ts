/**
 * Retry timing as pure functions of their inputs (ky `source/core/retry-timing.ts`, openai-node's
 * `retryRequest`): the caller passes the clock and the randomness.
 */

interface BackoffOptions {
  /** Ceiling of the first retry's delay. */
  baseDelayMs: number;
  /** No delay ceiling grows past this. */
  maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter: uniform in [0, min(max, base × 2^(retry−1))), which
 * spreads the retries of many clients that failed together instead of re-synchronising them
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). `retry` is 1 for
 * the first retry.
 */
export function backoffDelay(retry: number, options: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const r = random();
  return Math.floor(ceiling * (Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0));
}

interface RetryTimingInput extends BackoffOptions {
  /** 1 for the first retry. */
  retry: number;
  /** What the server asked for (`retry-after-ms`, `retry-after`), in ms; null when it did not say. */
  hintMs: number | null;
  /** Longest server-requested wait honoured; a longer one ends the retries. */
  maxRetryAfterMs: number;
  /** Time spent since the first attempt started. */
  elapsedMs: number;
  /** Cap on the whole operation, retries and waits included. */
  maxElapsedMs: number;
}

type RetryTiming =
  | { retry: true; delayMs: number; source: 'server' | 'backoff' }
  | { retry: false; reason: 'retry_after_too_long' | 'deadline' };

/**
 * How long to wait before the next attempt, or why not to make one. A server's own wait wins
 * over backoff (it knows when its limit lifts); a wait that would end past the deadline is not
 * started, since the attempt after it could not finish in time anyway.
 */
export function retryTiming(input: RetryTimingInput, random: () => number): RetryTiming {
  let delayMs: number;
  let source: 'server' | 'backoff';
  if (input.hintMs !== null && input.hintMs >= 0) {
    if (input.hintMs > input.maxRetryAfterMs) return { retry: false, reason: 'retry_after_too_long' };
    delayMs = Math.ceil(input.hintMs);
    source = 'server';
  } else {
    delayMs = backoffDelay(input.retry, input, random);
    source = 'backoff';
  }
  if (input.elapsedMs + delayMs >= input.maxElapsedMs) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs, source };
}
