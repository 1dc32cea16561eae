/** A user-supplied price, in USD per 1M tokens (the `prices` option of `createMeter`). */
export interface ModelPrice {
  input: number;
  output: number;
  /** Cache reads; the input price when absent. */
  cachedInput?: number;
  /** Cache writes; the input price when absent. */
  cacheWrite?: number;
}

/**
 * A price ready to multiply by token counts, in nano-dollars per token. Fractions are kept:
 * $0.075 per 1M tokens is 75 nanos per token, $0.0375 is 37.5; rounding happens per cost part.
 */
export interface ResolvedPrice {
  inputNanosPerToken: number;
  outputNanosPerToken: number;
  cacheReadNanosPerToken: number;
  cacheWriteNanosPerToken: number;
  source: 'override' | 'catalog';
  /** The override key or the catalog's model id the price was found under. */
  pricedAs: string;
  /** The catalog's provider id (`openai`, `google`, ...); null for overrides. */
  catalogProvider: string | null;
}

export interface PriceBookOptions {
  /** Clock for catalog prices that change on a date or by time of day. Default `Date.now`. */
  now?: () => number;
  /** Lookups remembered (provider and model name pairs). Default 1,000. */
  cacheSize?: number;
}
