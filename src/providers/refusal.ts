import type { ProviderAdapter } from './types.js';

/** Which resilience policy answered instead of the provider; sent as `x-llm-meter-guard`. */
type GuardName = 'max_tool_rounds' | 'user_requests' | 'user_tokens' | 'circuit_breaker' | 'rate_limiter';

/**
 * The one `x-llm-meter-*` header that says who answered instead of the provider: a guard, rate
 * limiter or circuit breaker (`x-llm-meter-guard`, which the meter records as `blocked`), a
 * blocking budget (`x-llm-meter-budget: exceeded`), or the context-window check
 * (`x-llm-meter-refused: context_window`).
 */
type RefusalMarker =
  | readonly ['x-llm-meter-guard', GuardName]
  | readonly ['x-llm-meter-budget', 'exceeded']
  | readonly ['x-llm-meter-refused', 'context_window'];

export const guardMarker = (guard: GuardName): RefusalMarker => ['x-llm-meter-guard', guard];

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** A refusal llm-meter answers itself, described. */
export interface LocalRefusal {
  marker: RefusalMarker;
  status: 400 | 429 | 503;
  /** The error type in the provider's body; it becomes the record's `errorCode`. */
  type: string;
  message: string;
  retryAfterMs?: number | null;
  /** Default false: the SDKs must not retry a refusal that a retry cannot change. */
  shouldRetry?: boolean;
}

/**
 * A response llm-meter answers itself, in the provider's own error shape (the adapter's
 * `errorBody`), so the provider's SDK raises its usual error class for the status. The error
 * type becomes the record's `errorCode`; the marker header tells a client it was local.
 */
export function localRefusal(adapter: Pick<ProviderAdapter, 'errorBody'>, refusal: LocalRefusal): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-should-retry': refusal.shouldRetry ? 'true' : 'false',
    [refusal.marker[0]]: refusal.marker[1],
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
