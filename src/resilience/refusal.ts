import type { ProviderAdapter } from '../providers/types.js';

/** Which local policy answered instead of the provider; sent as `x-llm-meter-guard`. */
export type GuardName =
  | 'max_tool_rounds'
  | 'user_requests'
  | 'user_tokens'
  | 'circuit_breaker'
  | 'rate_limiter';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/**
 * A response llm-meter answers itself, in the provider's own error shape (the adapter's
 * `errorBody`), so the provider's SDK raises its usual error class for the status. The error
 * type becomes the record's `errorCode`; `x-llm-meter-guard` tells a client it was local.
 */
export function localRefusal(
  adapter: ProviderAdapter,
  refusal: {
    guard: GuardName;
    status: 400 | 429 | 503;
    type: string;
    message: string;
    retryAfterMs?: number | null;
    /** Default false: the SDKs must not retry a refusal that a retry cannot change. */
    shouldRetry?: boolean;
  },
): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-should-retry': refusal.shouldRetry ? 'true' : 'false',
    'x-llm-meter-guard': refusal.guard,
  };
  if (refusal.retryAfterMs !== undefined && refusal.retryAfterMs !== null) {
    const ms = Math.max(0, Math.ceil(refusal.retryAfterMs));
    headers['retry-after-ms'] = String(ms);
    headers['retry-after'] = String(Math.ceil(ms / 1000));
  }
  return new Response(JSON.stringify(adapter.errorBody(refusal.type, `${refusal.message} (llm-meter)`)), {
    status: refusal.status,
    statusText: STATUS_TEXT[refusal.status],
    headers,
  });
}
