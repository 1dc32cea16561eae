/**
 * One way to say no. A gate (a blocking budget, the context-window check) or a guard beneath
 * the meter (rate limiter, circuit breaker, tool-round and per-user caps) describes its refusal;
 * `refusalResponse` turns the description into the provider-shaped response, and the wrapper
 * records it as the call's outcome (`blocked`).
 */
import { type LocalRefusal, localRefusal } from '../providers/refusal.js';
import type { ProviderAdapter } from '../providers/types.js';

type RefusalKind = 'budget' | 'context_window' | 'guard';

export interface Refusal extends LocalRefusal {
  kind: RefusalKind;
}

/** Refusals built in this process, by their response (the guards answer beneath the meter). */
const built = new WeakMap<object, Refusal>();

/** Any wire format's error shape, for an adapter whose own `errorBody` failed. */
const PLAIN: Pick<ProviderAdapter, 'errorBody'> = {
  errorBody: (type, message) => ({ error: { message, type, code: type } }),
};

/**
 * The response for a refusal, in the adapter's error shape (429 and 400 make the official SDKs
 * raise their usual error class; `x-should-retry: false` keeps them from retrying). A refusal
 * holds even when the adapter cannot shape it: `onError` hears of it and a plain shape is used.
 */
export function refusalResponse(
  adapter: Pick<ProviderAdapter, 'errorBody'>,
  refusal: Refusal,
  onError?: (error: unknown) => void,
): Response {
  let response: Response;
  try {
    response = localRefusal(adapter, refusal);
  } catch (error) {
    onError?.(error);
    response = localRefusal(PLAIN, refusal);
  }
  built.set(response, refusal);
  return response;
}

/**
 * The guard that answered instead of the provider, or null: the one place the wrapper (and the
 * rate limiter, which must not learn a provider limit from it) tells a guard's refusal from a
 * provider's error. Built in this process, it is known by the response itself; from an llm-meter
 * gateway in front of this meter, by its `x-llm-meter-guard` header, which stays the wire contract.
 */
export function guardRefusalOf(response: { readonly headers: Headers }): string | null {
  const refusal = built.get(response);
  if (refusal) return refusal.kind === 'guard' ? refusal.marker[1] : null;
  return response.headers.get('x-llm-meter-guard');
}
