import { ContextWindowExceededError } from './errors/errors.js';
import type { CallState } from './fetch/wrap.js';
import { contextWindow, type PriceBook } from './pricing/index.js';
import { estimateChatInput } from './tokens/index.js';

/** Default output reserve when a request sets no max tokens (for projected cost). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

/**
 * Count the request's input tokens (once per call, lazily) and fill the pre-flight figures:
 * estimate, projected maximum cost, context window and whether it is exceeded.
 */
export async function estimatePreflight(state: CallState, prices: PriceBook): Promise<void> {
  if (state.preflight.inputTokensEstimate !== null || !state.body) return;
  const model = state.info.model;
  const shape = state.detection.adapter.bodyShape(state.detection);
  const { tokens } = await estimateChatInput(state.body, model, shape);
  const window = contextWindow(state.detection.provider, model);
  const maxOut = state.info.maxTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const price = prices.lookup(state.detection.provider, model, tokens);
  const projected = prices.projectedMaxCostNanos(tokens, maxOut * (state.info.choices ?? 1), price);
  state.preflight = {
    inputTokensEstimate: tokens,
    // Saturates: a request may ask for absurd limits (each bounded by MAX_TOKENS, but not their
    // product); the projection stays an exact integer, far above any budget.
    projectedMaxCostNanos: projected === null ? null : Math.min(projected, Number.MAX_SAFE_INTEGER),
    contextWindow: window,
    contextExceeded: window === null ? null : tokens + (state.info.maxTokens ?? 0) > window,
  };
}

/** With `enforceContextWindow`, refuse locally a call that cannot fit. */
export async function checkContextWindow(state: CallState, prices: PriceBook): Promise<void> {
  await estimatePreflight(state, prices);
  const p = state.preflight;
  if (p.contextExceeded && p.contextWindow !== null && p.inputTokensEstimate !== null) {
    throw new ContextWindowExceededError(
      state.info.model ?? 'unknown',
      p.inputTokensEstimate,
      state.info.maxTokens ?? 0,
      p.contextWindow,
    );
  }
}
