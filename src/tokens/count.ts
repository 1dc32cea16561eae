/**
 * Bounded token counting: split (./split.ts), cap, extrapolate.
 *
 * The first MAX_COUNTED_CHARS characters of a call are counted exactly; the rest is estimated
 * from the tokens-per-character ratio of the counted part and the result flagged `truncated`.
 * Throughput is 2 to 14 MB/s depending on the text (bench/tokenizer.mjs: about 0.2 s for 1 MB of
 * prose, 0.5 s for 1 MB of CJK or base64, on one core), so a sync count of a capped text can hold
 * the event loop for half a second; the async variants yield every 32 to 64 KiB instead.
 */

import { type Encoder, encodingForModel, loadEncoding } from './encoding.js';
import { MAX_PIECE_CHARS, MAX_RUN_CHARS, pieces } from './split.js';

/** Characters counted exactly per call; beyond this the count is extrapolated. */
export const MAX_COUNTED_CHARS = 1_000_000;
/** Async counting yields after this many characters (pieces are up to 64 KiB, so after each). */
const YIELD_EVERY_CHARS = MAX_PIECE_CHARS / 2;
/** Used only when nothing could be counted before the cap: ~4 characters per token. */
const FALLBACK_TOKENS_PER_CHAR = 0.25;

export interface TokenCount {
  tokens: number;
  /** Part of the text was estimated from the ratio of the counted part, not counted. */
  truncated: boolean;
}

export interface TokenEstimate extends TokenCount {
  /** The model's own tokenizer was used (OpenAI models); false: o200k_base as an approximation. */
  exact: boolean;
}

/**
 * Running totals for one estimate that may span many strings (a chat body): the character cap
 * is shared by all of them.
 */
export interface Tally {
  tokens: number;
  countedChars: number;
  skippedChars: number;
  /** Characters counted since the last yield to the event loop. */
  sinceYield: number;
}

export function newTally(): Tally {
  return { tokens: 0, countedChars: 0, skippedChars: 0, sinceYield: 0 };
}

/** Adds `text` to the tally; yields (for an async driver) every 32 to 64 KiB counted. */
export function* tallyText(
  text: string,
  encoder: Encoder,
  tally: Tally,
  maxChars: number = MAX_COUNTED_CHARS,
): Generator<void, void, undefined> {
  if (text.length === 0) return;
  if (tally.countedChars >= maxChars) {
    tally.skippedChars += text.length;
    return;
  }
  // Pieces no longer than the budget left, so that a small budget still counts a sample.
  const maxPiece = Math.max(1, Math.min(MAX_PIECE_CHARS, maxChars - tally.countedChars));
  for (const { start, end } of pieces(text, undefined, MAX_RUN_CHARS, maxPiece)) {
    if (tally.countedChars + (end - start) > maxChars) {
      tally.skippedChars += text.length - start;
      return;
    }
    tally.tokens += encoder.countUnbounded(
      start === 0 && end === text.length ? text : text.slice(start, end),
    );
    tally.countedChars += end - start;
    tally.sinceYield += end - start;
    if (tally.sinceYield >= YIELD_EVERY_CHARS) {
      tally.sinceYield = 0;
      yield;
    }
  }
}

/** Counted tokens plus the skipped characters at the counted part's tokens-per-character ratio. */
export function tallyResult(tally: Tally): TokenCount {
  if (tally.skippedChars === 0) return { tokens: tally.tokens, truncated: false };
  const ratio = tally.countedChars > 0 ? tally.tokens / tally.countedChars : FALLBACK_TOKENS_PER_CHAR;
  return { tokens: tally.tokens + Math.round(tally.skippedChars * ratio), truncated: true };
}

/** Runs a tally generator to completion without yielding. */
export function drain(steps: Generator<void, void, undefined>): void {
  for (const _ of steps) {
    // Each step is one piece counted; nothing to do between them when synchronous.
  }
}

/** Runs a tally generator, giving the event loop a turn between steps. */
export async function drainAsync(steps: Generator<void, void, undefined>): Promise<void> {
  for (const _ of steps) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Counts `text` synchronously, bounded: at most MAX_COUNTED_CHARS are tokenized (the rest is
 * extrapolated) and no run longer than MAX_RUN_CHARS reaches the tokenizer uncut.
 */
export function countTokens(
  text: string,
  encoder: Encoder,
  maxChars: number = MAX_COUNTED_CHARS,
): TokenCount {
  const tally = newTally();
  drain(tallyText(text, encoder, tally, maxChars));
  return tallyResult(tally);
}

/** Like countTokens, choosing the encoding from the model and yielding every 32 to 64 KiB. */
export async function countTokensAsync(text: string, model: string | null): Promise<TokenEstimate> {
  const choice = encodingForModel(model);
  const encoder = await loadEncoding(choice.encoding);
  const tally = newTally();
  await drainAsync(tallyText(text, encoder, tally));
  return { ...tallyResult(tally), exact: choice.exact };
}

/**
 * Tokens of received output text, for streams whose usage never arrived. Reasoning the provider
 * kept hidden cannot be counted, so for reasoning models this is a lower bound.
 */
export function countOutputText(text: string, model: string | null): Promise<TokenEstimate> {
  return countTokensAsync(text, model);
}
