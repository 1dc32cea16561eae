/**
 * One JSON array that arrives in pieces, read element by element: Gemini's
 * `:streamGenerateContent` without `alt=sse` sends `[{...}\r\n,\r\n{...}]`
 * (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent).
 *
 * Works on bytes: JSON's structural characters are ASCII and never occur inside a multi-byte
 * character, so an element's bytes are decoded only once it is complete. Only depth, strings
 * and escapes are tracked; the caller's JSON.parse judges the element itself.
 *
 * Reads beside a body that goes to the caller unchanged, so it never throws: malformed input is
 * counted in `errors` and skipped, and only the element being read is held, up to
 * `maxElementBytes`. A body that is one object instead of an array (an error reply) is given to
 * `onElement` as a single element, and counted as an error.
 */
import { positiveNumber } from '../options.js';
import { BYTE_CAP, callHook, DEFAULT_MAX_EVENT_BYTES } from './bytes.js';

interface JsonArrayParserOptions {
  /** The JSON text of one top-level element, without the whitespace around it. */
  onElement(text: string): void;
  /** Bytes one element may take; a larger one is dropped and counted in `oversized`. Default 8 MiB. */
  maxElementBytes?: number;
  /**
   * An element over `maxElementBytes` was dropped: `bytes` of it were not read (all of it, once it
   * ends or the body does).
   */
  onOversized?(bytes: number): void;
}

export interface JsonArrayEndState {
  /** The closing `]` arrived. */
  complete: boolean;
  /** Bytes of an element the stream cut off, which is not delivered. */
  pendingBytes: number;
  elements: number;
  /** Malformed input skipped, `onElement` calls that threw, and chunks that could not be read. */
  errors: number;
  oversized: number;
}

interface JsonArrayParser {
  feed(chunk: Uint8Array): void;
  end(): JsonArrayEndState;
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const UTF8_BOM = [0xef, 0xbb, 0xbf];

// Where the reader is, between elements.
const BEFORE_ARRAY = 0;
const EXPECT_VALUE = 1;
const AFTER_VALUE = 2;
const DONE = 3;

// What kind of element is being read.
const NONE = 0;
const CONTAINER = 1;
const STRING = 2;
const BARE = 3; // number, true, false, null: ends at whitespace, ',' or ']'

export function createJsonArrayParser(options: JsonArrayParserOptions): JsonArrayParser {
  const { onElement } = options;
  const maxElementBytes = positiveNumber(
    'maxElementBytes',
    options.maxElementBytes,
    DEFAULT_MAX_EVENT_BYTES,
    BYTE_CAP,
  );
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  let state = BEFORE_ARRAY;
  let afterComma = false;
  // In a run of junk bytes, counted once.
  let inJunk = false;
  let offset = 0;

  let kind = NONE;
  let depth = 0;
  let inString = false;
  let escaped = false;
  // An object where the array should be: read whole, then back to looking for '['.
  let stray = false;
  let held: Uint8Array[] = [];
  let elementBytes = 0;
  let discarding = false;
  let finalState: JsonArrayEndState | undefined;

  let elements = 0;
  let errors = 0;
  let oversized = 0;

  const dropped = (bytes: number) => callHook(options.onOversized, bytes, () => errors++);

  function startElement(k: number, chunkStart: number): number {
    inJunk = false;
    kind = k;
    depth = k === CONTAINER ? 1 : 0;
    inString = k === STRING;
    escaped = false;
    elementBytes = 0;
    discarding = false;
    return chunkStart;
  }

  function finishElement(chunk: Uint8Array, start: number, end: number): void {
    const size = elementBytes + (end - start);
    const parts = held;
    const wasDiscarding = discarding;
    held = [];
    elementBytes = 0;
    discarding = false;
    kind = NONE;
    state = stray ? BEFORE_ARRAY : AFTER_VALUE;
    stray = false;
    if (wasDiscarding) {
      dropped(size);
      return;
    }
    if (size > maxElementBytes) {
      oversized++;
      dropped(size);
      return;
    }
    let text = '';
    for (const part of parts) text += decoder.decode(part, { stream: true });
    text += decoder.decode(chunk.subarray(start, end));
    elements++;
    try {
      onElement(text);
    } catch {
      errors++;
    }
  }

  function junk(): void {
    if (!inJunk) errors++;
    inJunk = true;
  }

  function scan(chunk: Uint8Array): void {
    const n = chunk.length;
    // Where the element being read starts in this chunk.
    let start = 0;
    const startValue = (b: number, i: number): void => {
      const k = valueStart(b);
      if (k === NONE) errors++;
      else start = startElement(k, i);
    };
    for (let i = 0; i < n; i++) {
      const b = chunk[i]!;
      if (kind !== NONE) {
        if (inString) {
          if (escaped) escaped = false;
          else if (b === BACKSLASH) escaped = true;
          else if (b === QUOTE) {
            inString = false;
            if (kind === STRING) finishElement(chunk, start, i + 1);
          }
          continue;
        }
        if (kind === CONTAINER) {
          if (b === QUOTE) inString = true;
          else if (b === LBRACE || b === LBRACKET) depth++;
          else if (b === RBRACE || b === RBRACKET) {
            depth--;
            if (depth === 0) finishElement(chunk, start, i + 1);
          }
          continue;
        }
        // A bare value ends at the byte after it, which is then read between elements.
        if (!isWhitespace(b) && b !== COMMA && b !== RBRACKET) continue;
        finishElement(chunk, start, i);
      }
      if (isWhitespace(b)) continue;
      switch (state) {
        case BEFORE_ARRAY:
          if (b === LBRACKET) {
            state = EXPECT_VALUE;
            afterComma = false;
            inJunk = false;
          } else if (b === LBRACE) {
            errors++;
            stray = true;
            start = startElement(CONTAINER, i);
          } else if (!(offset + i < 3 && b === UTF8_BOM[offset + i])) {
            junk();
          }
          break;
        case AFTER_VALUE:
          if (b === COMMA) {
            state = EXPECT_VALUE;
            afterComma = true;
            break;
          }
          if (b === RBRACKET) {
            state = DONE;
            break;
          }
          // A missing comma: read on as if it were there. Anything else is skipped.
          errors++;
          if (valueStart(b) !== NONE) start = startElement(valueStart(b), i);
          break;
        case EXPECT_VALUE:
          if (b === RBRACKET) {
            if (afterComma) errors++;
            state = DONE;
          } else {
            startValue(b, i);
          }
          break;
        default:
          junk();
      }
    }

    offset += n;
    if (kind === NONE || start >= n) return;
    elementBytes += n - start;
    if (discarding) return;
    if (elementBytes > maxElementBytes) {
      oversized++;
      discarding = true;
      held = [];
      return;
    }
    held.push(chunk.slice(start, n));
  }

  function feed(chunk: Uint8Array): void {
    if (finalState !== undefined) return;
    // Typed as bytes, but a caller's JavaScript may hand over anything.
    if (!(chunk instanceof Uint8Array)) {
      errors++;
      return;
    }
    try {
      scan(chunk);
    } catch {
      errors++;
    }
  }

  function end(): JsonArrayEndState {
    if (finalState === undefined) {
      if (discarding && kind !== NONE) dropped(elementBytes);
      finalState = {
        complete: state === DONE,
        pendingBytes: kind === NONE ? 0 : elementBytes,
        elements,
        errors,
        oversized,
      };
      held = [];
    }
    return finalState;
  }

  return { feed, end };
}

/** The kind of element a byte starts, NONE for one that cannot start a value. */
function valueStart(b: number): number {
  if (b === LBRACE || b === LBRACKET) return CONTAINER;
  if (b === QUOTE) return STRING;
  if (b === RBRACE || b === COLON || b === COMMA || b === RBRACKET) return NONE;
  return BARE;
}

function isWhitespace(b: number): boolean {
  return b === SPACE || b === LF || b === CR || b === TAB;
}
