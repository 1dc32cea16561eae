/**
 * Cutting text into pieces the tokenizer can count independently, in bounded time.
 *
 * BPE merging in gpt-tokenizer is quadratic in the length of one pre-token (a run the
 * tokenizer's split regex keeps together): measured on one core, 50,000 × "a" takes 1.1 s,
 * 100,000 × "a" 3.4 s, 20,000 CJK characters without punctuation 1.0 s. So no piece handed to the
 * tokenizer may contain a run longer than MAX_RUN_CHARS without a cut.
 *
 * Cuts are made where the split regexes of both `o200k_base` and `cl100k_base` already end a
 * pre-token, so that they change nothing:
 * - before a single space or tab that has non-whitespace on both sides (`word| word`);
 * - between letters and digits, digits and letters, letters or digits and punctuation other
 *   than `'` (which can start a contraction), and punctuation and digits;
 * - inside a run of digits, at a multiple of three digits from its start.
 * Only a run of MAX_RUN_CHARS with none of those (`aaaa…`, a long CJK sentence without
 * punctuation, long runs of spaces, emoji or dashes) gets a forced cut, which can change the
 * count by the merges lost across the cut: at most 3 tokens per cut in 100,000 random texts
 * (the property in test/tokens/tokens.test.ts, run longer). On ~1 MB each of prose, code, JSON, CJK, emoji and base64
 * (bench/tokenizer.mjs) the counts are exact except prose: +3 of 254,836 tokens (0.001%), from
 * long runs of spaces and dashes in markdown tables. 200,000 × "a" is counted exactly (8 × "a" is one
 * token).
 */

/** The longest run counted without a cut, in UTF-16 code units. */
export const MAX_RUN_CHARS = 256;
/** Pieces are at most this long, so an async caller can yield between them. */
export const MAX_PIECE_CHARS = 65_536;

export interface Piece {
  start: number;
  end: number;
}

// Character kinds, as the split regexes of both encodings see them.
const LETTER = 0;
const DIGIT = 1;
const SPACE = 2;
const PUNCT = 3;
/** Combining marks are letters to o200k but punctuation to cl100k: never cut next to one. */
const MARK = 4;
type Kind = typeof LETTER | typeof DIGIT | typeof SPACE | typeof PUNCT | typeof MARK;

const LETTER_RE = /\p{L}/u;
const MARK_RE = /\p{M}/u;
const DIGIT_RE = /\p{N}/u;
const SPACE_RE = /\s/u;

function kindOf(cp: number): Kind {
  if (cp < 0x80) {
    if ((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x41 && cp <= 0x5a)) return LETTER;
    if (cp >= 0x30 && cp <= 0x39) return DIGIT;
    if (cp === 0x20 || (cp >= 0x09 && cp <= 0x0d)) return SPACE;
    return PUNCT;
  }
  const ch = String.fromCodePoint(cp);
  if (LETTER_RE.test(ch)) return LETTER;
  if (MARK_RE.test(ch)) return MARK;
  if (DIGIT_RE.test(ch)) return DIGIT;
  if (SPACE_RE.test(ch)) return SPACE;
  return PUNCT;
}

/**
 * Whether cutting before a character of kind `kind` (code unit `unit`), preceded by one of kind
 * `before` and followed by one of kind `after` (null at the end), leaves every pre-token of both
 * encodings intact.
 */
function isSafeCut(before: Kind, kind: Kind, unit: number, after: () => Kind | null): boolean {
  if (unit === 0x20 || unit === 0x09) {
    if (before === SPACE) return false;
    const next = after();
    return next !== null && next !== SPACE;
  }
  if (before === kind || before === SPACE || kind === SPACE) return false;
  if (before === MARK || kind === MARK) return false;
  // Punctuation followed by letters is one pre-token (`-word`, `.com`); `'s` is a contraction.
  if (before === PUNCT && kind === LETTER) return false;
  if (before === LETTER && unit === 0x27) return false;
  return true;
}

/**
 * Splits `text` into consecutive pieces of at most `maxPiece` code units that each contain no
 * run longer than `maxRun` without a safe cut. `stats.forcedCuts` counts the cuts that may
 * change the count.
 */
export function* pieces(
  text: string,
  stats?: { forcedCuts: number },
  maxRun: number = MAX_RUN_CHARS,
  maxPiece: number = MAX_PIECE_CHARS,
): Generator<Piece, void, undefined> {
  const n = text.length;
  if (n <= maxRun) {
    if (n > 0) yield { start: 0, end: n };
    return;
  }
  let start = 0;
  let lastSafe = 0;
  let before = kindOf(text.codePointAt(0)!);
  // In a run of digits: the index of the current digit in the run, and where its group of three began.
  let digit = before === DIGIT ? 0 : -1;
  let digitGroup = 0;
  let i = text.codePointAt(0)! > 0xffff ? 2 : 1;
  while (i < n) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    const kind = kindOf(cp);
    const afterAt = i + width;
    digit = kind !== DIGIT ? -1 : before === DIGIT ? digit + 1 : 0;
    if (digit >= 0 && digit % 3 === 0) digitGroup = i;
    if (
      isSafeCut(before, kind, text.charCodeAt(i), () =>
        afterAt < n ? kindOf(text.codePointAt(afterAt)!) : null,
      )
    ) {
      lastSafe = i;
    } else if (i - lastSafe >= maxRun) {
      // Digits are pre-tokenized in threes from the start of their run (`\p{N}{1,3}`), so a cut
      // before a later group of three is exact. (Not before the first: after whitespace that
      // would change how the whitespace is split.)
      const exact = digit >= 3;
      const cut = exact ? digitGroup : i;
      if (!exact && stats) stats.forcedCuts++;
      yield { start, end: cut };
      start = cut;
      lastSafe = cut;
    }
    if (i - start >= maxPiece && lastSafe > start) {
      yield { start, end: lastSafe };
      start = lastSafe;
    }
    before = kind;
    i = afterAt;
  }
  yield { start, end: n };
}
