import { contextWindowMessage } from './errors/errors.js';
import { NO_ESTIMATE, type PreparedCall } from './fetch/call.js';
import type { Refusal } from './fetch/refuse.js';
import { contextWindow, type PriceBook } from './pricing/index.js';
import type { PreflightInfo } from './record.js';
import { estimateChatInput } from './tokens/index.js';

/** Default output reserve when a request sets no max tokens (for projected cost). */
const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

/**
 * Count the request's input tokens and work out the pre-flight figures: estimate, projected
 * maximum cost, context window and whether it is exceeded. A call whose body could not be read
 * has none. `PreparedCall.estimate` asks once per call.
 */
export async function estimatePreflight(call: PreparedCall, prices: PriceBook): Promise<PreflightInfo> {
  if (!call.body) return NO_ESTIMATE;
  const { detection, info } = call;
  const model = info.model;
  const shape = detection.adapter.bodyShape(detection);
  const { tokens } = await estimateChatInput(call.body, model, shape);
  const window = contextWindow(detection.provider, model);
  const maxOut = info.maxTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const price = prices.lookup(detection.provider, model, tokens);
  const projected = prices.projectedMaxCostNanos(tokens, maxOut * (info.choices ?? 1), price);
  return {
    inputTokensEstimate: tokens,
    // Saturates: a request may ask for absurd limits (each bounded by MAX_TOKENS, but not their
    // product); the projection stays an exact integer, far above any budget.
    projectedMaxCostNanos: projected === null ? null : Math.min(projected, Number.MAX_SAFE_INTEGER),
    contextWindow: window,
    contextExceeded: window === null ? null : tokens + (info.maxTokens ?? 0) > window,
  };
}

/**
 * With `enforceContextWindow`, a call that cannot fit is refused locally: a 400 in the provider's
 * own error shape, not to be retried, so SDKs raise their usual BadRequestError with our message.
 */
export function contextWindowRefusal(call: PreparedCall, figures: PreflightInfo): Refusal | null {
  const { contextExceeded, contextWindow: window, inputTokensEstimate: input } = figures;
  if (!contextExceeded || window === null || input === null) return null;
  return {
    kind: 'context_window',
    marker: ['x-llm-meter-refused', 'context_window'],
    status: 400,
    type: 'context_length_exceeded',
    message: contextWindowMessage(call.info.model ?? 'unknown', input, call.info.maxTokens ?? 0, window),
  };
}
