import type { ParsedUsage } from './providers/types.js';
import { MAX_TOKENS, type TokenFigure, type TokenUsage } from './record.js';

/**
 * The one step every usage takes before it becomes part of a record: each figure a whole number
 * in [0, MAX_TOKENS], and each part within its whole, as record.ts counts them for every
 * provider (the adapters fold in what a wire format reports apart):
 *
 * - cache reads ≤ input, and cache writes ≤ input − cache reads (both are part of the input);
 * - reasoning ≤ output (OpenAI counts reasoning inside `completion_tokens`, Gemini's thoughts are
 *   added to the output by its adapter, Anthropic and Ollama report none apart).
 *
 * A figure changed to get there (too large, negative, not a whole number, not a number at all),
 * or one the adapter found on the wire but could not read (`unreadable`), means the usage is no
 * longer what the provider said: its source becomes `estimated` (a row's `tokens_estimated`, a
 * span's `llm_meter.usage.source`) and `clamped` names the figures changed. Pure; never throws.
 */
export function clampUsage(usage: ParsedUsage, source: TokenUsage['source']): TokenUsage {
  const clamped: TokenFigure[] = [];
  const bound = (figure: TokenFigure, max: number): number => {
    const value: unknown = usage[figure];
    const n = typeof value === 'number' && !Number.isNaN(value) ? value : 0;
    const out = Math.round(Math.min(Math.max(n, 0), max));
    if (out !== value) clamped.push(figure);
    return out;
  };
  const inputTokens = bound('inputTokens', MAX_TOKENS);
  const cacheReadTokens = bound('cacheReadTokens', inputTokens);
  const cacheWriteTokens = bound('cacheWriteTokens', inputTokens - cacheReadTokens);
  const outputTokens = bound('outputTokens', MAX_TOKENS);
  const reasoningTokens = bound('reasoningTokens', outputTokens);
  const trusted = clamped.length === 0 && usage.unreadable !== true;
  const result: TokenUsage = {
    inputTokens,
    outputTokens,
    cacheReadTokens,
    cacheWriteTokens,
    reasoningTokens,
    source: trusted ? source : 'estimated',
  };
  if (clamped.length > 0) result.clamped = clamped;
  return result;
}
