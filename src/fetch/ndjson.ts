/**
 * Newline-delimited JSON (https://github.com/ndjson/ndjson-spec), as Ollama streams it: one JSON
 * text per LF-ended line. Lines are cut on bytes (an LF is never part of a multi-byte character)
 * and decoded whole; the caller parses them.
 *
 * Reads beside a body that goes to the caller unchanged, so it never throws, and holds only the
 * line being read, up to `maxLineBytes`.
 */
import { positiveNumber } from '../options.js';
import { BYTE_CAP, callHook, DEFAULT_MAX_EVENT_BYTES } from './bytes.js';

interface NdjsonParserOptions {
  /** One line's text, its CR (if any) removed; blank lines are skipped. */
  onLine(line: string): void;
  /** Bytes one line may take; a longer one is dropped and counted in `oversized`. Default 8 MiB. */
  maxLineBytes?: number;
  /** A line over `maxLineBytes` was dropped: `bytes` of it (all of it) were not read. */
  onOversized?(bytes: number): void;
}

export interface NdjsonEndState {
  /** Bytes after the last LF. A last line without its LF is still delivered by `end()`. */
  pendingBytes: number;
  lines: number;
  /** `onLine` calls that threw, and chunks that could not be read. */
  errors: number;
  oversized: number;
}

interface NdjsonParser {
  feed(chunk: Uint8Array): void;
  end(): NdjsonEndState;
}

const LF = 0x0a;

export function createNdjsonParser(options: NdjsonParserOptions): NdjsonParser {
  const { onLine } = options;
  const maxLineBytes = positiveNumber(
    'maxLineBytes',
    options.maxLineBytes,
    DEFAULT_MAX_EVENT_BYTES,
    BYTE_CAP,
  );
  // Not `fatal`: a bad byte becomes U+FFFD and JSON.parse decides. A BOM opening a line is dropped.
  const decoder = new TextDecoder('utf-8', { fatal: false });

  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let discarding = false;
  let finalState: NdjsonEndState | undefined;

  let lines = 0;
  let errors = 0;
  let oversized = 0;

  const dropped = (bytes: number) => callHook(options.onOversized, bytes, () => errors++);

  function finishLine(last: Uint8Array): void {
    const size = heldBytes + last.length;
    const parts = held;
    const wasDiscarding = discarding;
    held = [];
    heldBytes = 0;
    discarding = false;
    if (wasDiscarding) {
      dropped(size);
      return;
    }
    if (size > maxLineBytes) {
      oversized++;
      dropped(size);
      return;
    }
    let text = '';
    for (const part of parts) text += decoder.decode(part, { stream: true });
    text += decoder.decode(last);
    if (text.charCodeAt(text.length - 1) === 0x0d) text = text.slice(0, -1);
    if (text.length === 0 || (isBlankStart(text.charCodeAt(0)) && text.trim().length === 0)) return;
    lines++;
    try {
      onLine(text);
    } catch {
      errors++;
    }
  }

  function scan(chunk: Uint8Array): void {
    const n = chunk.length;
    let start = 0;
    for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, start)) {
      finishLine(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start >= n) return;
    heldBytes += n - start;
    if (discarding) return;
    if (heldBytes > maxLineBytes) {
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

  function end(): NdjsonEndState {
    if (finalState !== undefined) return finalState;
    const pendingBytes = heldBytes;
    try {
      if (heldBytes > 0) finishLine(new Uint8Array(0));
    } catch {
      errors++;
    }
    finalState = { pendingBytes, lines, errors, oversized };
    return finalState;
  }

  return { feed, end };
}

function isBlankStart(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0xfeff;
}
