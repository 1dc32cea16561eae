/**
 * Prices for calls: user overrides first, then the catalog; and the cost of a call from them.
 *
 * Cost (DESIGN.md): input tokens include cache reads and writes, so
 *   (input − cache reads − cache writes) × input price + cache reads × cache-read price
 *   + cache writes × cache-write price + output (reasoning included) × output price,
 * each part rounded to whole nano-dollars, the total their sum. An unknown price or unknown
 * usage gives a null cost, never 0.
 */

import { InvalidOptionError } from '../errors/errors.js';
import type { CallCost, TokenUsage } from '../record.js';
import { type CatalogMatch, findModel, perMillion, pricesAt } from './catalog.js';
import { nameCandidates, routeForProvider } from './names.js';
import type { ModelPrice, PriceBookOptions, ResolvedPrice } from './types.js';

/** Longer model names are not looked up: no real one comes close, and matching costs time. */
const MAX_MODEL_NAME_LENGTH = 256;

const UNPRICED: CallCost = {
  totalNanos: null,
  inputNanos: null,
  cacheReadNanos: null,
  cacheWriteNanos: null,
  outputNanos: null,
  source: null,
  pricedAs: null,
};

export interface PriceBook {
  /**
   * The price of a model, or null when neither the overrides nor the catalog know it. Pass the
   * call's input tokens (cache included) so that tiered prices pick their tier; without them the
   * base tier applies.
   */
  lookup(provider: string | null, model: string | null, inputTokens?: number): ResolvedPrice | null;
  cost(usage: TokenUsage | null, price: ResolvedPrice | null): CallCost;
  /** Input tokens as uncached input plus the full output allowance; null when unpriced. */
  projectedMaxCostNanos(
    inputTokens: number,
    maxOutputTokens: number,
    price: ResolvedPrice | null,
  ): number | null;
}

/** USD per 1M tokens → nano-dollars per token (× 1e9 / 1e6), exact to 1e-6 nanos. */
function nanosPerToken(usdPerMillion: number): number {
  return Math.round(usdPerMillion * 1e9) / 1e6;
}

function checkPrice(model: string, field: string, value: unknown, required: boolean): number | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidOptionError(
      `Expected \`prices[${JSON.stringify(model)}].${field}\` to be a non-negative number.`,
    );
  }
  return value;
}

function resolveOverride(model: string, price: unknown): ResolvedPrice {
  if (typeof price !== 'object' || price === null) {
    throw new InvalidOptionError(
      `Expected \`prices[${JSON.stringify(model)}]\` to be an object with \`input\` and \`output\`.`,
    );
  }
  const p = price as Record<string, unknown>;
  const input = checkPrice(model, 'input', p.input, true)!;
  const output = checkPrice(model, 'output', p.output, true)!;
  const cachedInput = checkPrice(model, 'cachedInput', p.cachedInput, false) ?? input;
  const cacheWrite = checkPrice(model, 'cacheWrite', p.cacheWrite, false) ?? input;
  return {
    inputNanosPerToken: nanosPerToken(input),
    outputNanosPerToken: nanosPerToken(output),
    cacheReadNanosPerToken: nanosPerToken(cachedInput),
    cacheWriteNanosPerToken: nanosPerToken(cacheWrite),
    source: 'override',
    pricedAs: model,
    catalogProvider: null,
  };
}

function validateOverrides(overrides: Record<string, ModelPrice> | undefined): Map<string, ResolvedPrice> {
  const out = new Map<string, ResolvedPrice>();
  if (overrides === undefined) return out;
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new InvalidOptionError('Expected `prices` to be an object of model name to price.');
  }
  for (const [model, price] of Object.entries(overrides)) {
    out.set(model.trim().toLowerCase(), resolveOverride(model, price));
  }
  return out;
}

function resolveCatalog(match: CatalogMatch, nowMs: number, inputTokens: number): ResolvedPrice | null {
  const prices = pricesAt(match.model, nowMs);
  const input = perMillion(prices, 'input_mtok', inputTokens);
  if (input === null) return null;
  // Input-only models (embeddings) have no output price and produce no output tokens.
  const output = perMillion(prices, 'output_mtok', inputTokens) ?? 0;
  const cacheRead = perMillion(prices, 'cache_read_mtok', inputTokens) ?? input;
  const cacheWrite = perMillion(prices, 'cache_write_mtok', inputTokens) ?? input;
  return {
    inputNanosPerToken: nanosPerToken(input),
    outputNanosPerToken: nanosPerToken(output),
    cacheReadNanosPerToken: nanosPerToken(cacheRead),
    cacheWriteNanosPerToken: nanosPerToken(cacheWrite),
    source: 'catalog',
    pricedAs: match.model.id,
    catalogProvider: match.provider.id,
  };
}

/** One price whatever the date and the input size: it can be resolved once and kept. */
function isStatic(match: CatalogMatch): boolean {
  const prices = match.model.prices;
  if (Array.isArray(prices)) return false;
  for (const key in prices) {
    if (typeof prices[key] === 'object' && prices[key] !== null) return false;
  }
  return true;
}

function isCount(n: number): boolean {
  return Number.isFinite(n) && n >= 0;
}

/**
 * @param overrides user prices in USD per 1M tokens, by model name; they win over the catalog.
 *   Checked here: a negative or non-finite price throws, naming the model and field.
 */
export function createPriceBook(
  overrides?: Record<string, ModelPrice>,
  options: PriceBookOptions = {},
): PriceBook {
  const own = validateOverrides(overrides);
  const now = options.now ?? Date.now;
  const cacheSize = options.cacheSize ?? 1_000;
  // provider + model → what was found; the tier and dated price are applied per lookup.
  const found = new Map<string, ResolvedPrice | CatalogMatch | null>();

  function find(provider: string | null, model: string): ResolvedPrice | CatalogMatch | null {
    const key = `${provider ?? ''}\u0000${model}`;
    const cached = found.get(key);
    if (cached !== undefined) return cached;
    const candidates = nameCandidates(model);
    let result: ResolvedPrice | CatalogMatch | null = null;
    for (const name of candidates) {
      const override = own.get(name);
      if (override) {
        result = override;
        break;
      }
    }
    if (!result) {
      const match = findModel(routeForProvider(provider), candidates);
      // A catalog price with no dates and no tiers is resolved now rather than on every call.
      result = match && isStatic(match) ? resolveCatalog(match, 0, 0) : match;
    }
    if (found.size >= cacheSize) found.clear();
    found.set(key, result);
    return result;
  }

  return {
    lookup(provider, model, inputTokens = 0) {
      if (model === null || model.length === 0 || model.length > MAX_MODEL_NAME_LENGTH) return null;
      const result = find(provider, model);
      if (result === null) return null;
      if ('source' in result) return result;
      return resolveCatalog(result, now(), isCount(inputTokens) ? inputTokens : 0);
    },

    cost(usage, price) {
      if (usage === null || price === null) return UNPRICED;
      const { inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens } = usage;
      if (![inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens].every(isCount)) return UNPRICED;
      // Providers that report cache figures larger than the input (never seen, but not ruled
      // out) get no negative uncached part.
      const uncached = Math.max(0, inputTokens - cacheReadTokens - cacheWriteTokens);
      const inputNanos = Math.round(uncached * price.inputNanosPerToken);
      const cacheReadNanos = Math.round(cacheReadTokens * price.cacheReadNanosPerToken);
      const cacheWriteNanos = Math.round(cacheWriteTokens * price.cacheWriteNanosPerToken);
      const outputNanos = Math.round(outputTokens * price.outputNanosPerToken);
      return {
        totalNanos: inputNanos + cacheReadNanos + cacheWriteNanos + outputNanos,
        inputNanos,
        cacheReadNanos,
        cacheWriteNanos,
        outputNanos,
        source: price.source,
        pricedAs: price.pricedAs,
      };
    },

    projectedMaxCostNanos(inputTokens, maxOutputTokens, price) {
      if (price === null || !isCount(inputTokens) || !isCount(maxOutputTokens)) return null;
      return (
        Math.round(inputTokens * price.inputNanosPerToken) +
        Math.round(maxOutputTokens * price.outputNanosPerToken)
      );
    },
  };
}
