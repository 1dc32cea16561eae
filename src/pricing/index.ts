export { contextWindow } from './context.js';
export { createPriceBook, type PriceBook } from './price-book.js';
export type { ModelPrice, PriceBookOptions, ResolvedPrice } from './types.js';
