import { parseResetDuration } from '../errors/retry-after.js';
import type { ProviderAdapter } from '../providers/types.js';

/** What a response says about the caller's remaining rate-limit budget. */
interface LimitFacts {
  /** Any rate-limit header was present. */
  present: boolean;
  remainingRequests: number | null;
  remainingTokens: number | null;
  limitRequests: number | null;
  limitTokens: number | null;
  /** Until the request budget is whole again, in ms. */
  resetRequestsMs: number | null;
  resetTokensMs: number | null;
  retryAfterMs: number | null;
}

function untilDate(value: string | null, now: number): number | null {
  if (value === null) return null;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * The adapter's reading of the headers, plus the request-budget reset the adapter does not keep
 * (OpenAI's `x-ratelimit-reset-requests` duration, Anthropic's RFC 3339
 * `anthropic-ratelimit-requests-reset`). That one is wire-format knowledge kept here until
 * `RateLimitInfo` carries a `resetRequestsMs` of its own.
 */
export function readLimitFacts(adapter: ProviderAdapter, headers: Headers, wallNow: number): LimitFacts {
  const facts = adapter.readHeaders(headers);
  const rl = facts.rateLimit;
  const resetRequestsMs =
    parseResetDuration(headers.get('x-ratelimit-reset-requests')) ??
    untilDate(headers.get('anthropic-ratelimit-requests-reset'), wallNow);
  return {
    present: rl !== null || resetRequestsMs !== null,
    remainingRequests: rl?.remainingRequests ?? null,
    remainingTokens: rl?.remainingTokens ?? null,
    limitRequests: rl?.limitRequests ?? null,
    limitTokens: rl?.limitTokens ?? null,
    resetRequestsMs,
    resetTokensMs: rl?.resetTokensMs ?? null,
    retryAfterMs: facts.retryAfterMs,
  };
}
