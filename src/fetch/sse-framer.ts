/**
 * Cuts an event stream into whole events, as raw bytes, for a forwarder that rewrites or drops
 * events. A block ends where the spec's parser would dispatch: at a blank line, that is, a line
 * end (CRLF, LF or CR) right after another
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
 * Line ends are ASCII, so this works on bytes and never decodes.
 *
 * Every input byte comes out exactly once, in order: the blocks, then what `end()` returns.
 */
import { positiveNumber } from '../options.js';
import { BYTE_CAP, concatBytes, DEFAULT_MAX_EVENT_BYTES } from './bytes.js';

interface SseFramerOptions {
  /**
   * One event's bytes through its blank line, in a fresh buffer. `oversized` marks a piece of an
   * event larger than `maxBlockBytes`: such an event is passed on in pieces as it arrives, not
   * held, and its pieces are not events to parse.
   */
  onBlock(block: Uint8Array, oversized: boolean): void;
  /** Bytes one event may take. Default 8 MiB. */
  maxBlockBytes?: number;
}

interface SseFramerStats {
  blocks: number;
  oversized: number;
  /** `onBlock` calls that threw, and chunks that could not be read. */
  errors: number;
}

interface SseFramer {
  feed(chunk: Uint8Array): void;
  /**
   * Ends the stream: a block that waited only to see whether an LF follows its last CR goes out
   * through `onBlock`; the bytes of an incomplete last event are returned (null when none).
   */
  end(): Uint8Array | null;
  stats(): SseFramerStats;
}

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = new Uint8Array(0);

export function createSseFramer(options: SseFramerOptions): SseFramer {
  const { onBlock } = options;
  const maxBlockBytes = positiveNumber(
    'maxBlockBytes',
    options.maxBlockBytes,
    DEFAULT_MAX_EVENT_BYTES,
    BYTE_CAP,
  );

  // Bytes of the current block from earlier chunks.
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let atLineStart = true;
  // The last chunk ended in CR: an LF that starts the next chunk belongs to that line end.
  let afterCr = false;
  // ...and that CR ended a blank line, so the block ends after it or after that LF.
  let blockEndsAfterCr = false;
  // Inside an event already found to be oversized: its bytes go out as they arrive.
  let passing = false;
  let ended = false;

  let blocks = 0;
  let oversized = 0;
  let errors = 0;

  function deliver(block: Uint8Array, isOversized: boolean): void {
    try {
      onBlock(block, isOversized);
    } catch {
      errors++;
    }
  }

  /** The current block ends at `end`. */
  function emitBlock(chunk: Uint8Array, start: number, end: number): void {
    const size = heldBytes + (end - start);
    let isOversized = passing;
    passing = false;
    if (!isOversized && size > maxBlockBytes) {
      isOversized = true;
      oversized++;
    }
    if (size === 0) return;
    const block = concatBytes(held, chunk.subarray(start, end));
    held = [];
    heldBytes = 0;
    if (!isOversized) blocks++;
    deliver(block, isOversized);
  }

  function holdTail(chunk: Uint8Array, start: number): void {
    const n = chunk.length;
    if (start >= n) return;
    if (!passing && heldBytes + (n - start) > maxBlockBytes) {
      passing = true;
      oversized++;
    }
    if (passing) {
      const piece = concatBytes(held, chunk.subarray(start, n));
      held = [];
      heldBytes = 0;
      deliver(piece, true);
      return;
    }
    held.push(chunk.slice(start, n));
    heldBytes += n - start;
  }

  function scan(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    let start = 0;
    let i = 0;
    if (afterCr) {
      afterCr = false;
      if (chunk[0] === LF) i = 1;
      if (blockEndsAfterCr) {
        blockEndsAfterCr = false;
        emitBlock(chunk, 0, i);
        start = i;
      }
    }
    let cr = chunk.indexOf(CR, i);
    let lf = chunk.indexOf(LF, i);
    while (i < n) {
      if (cr !== -1 && cr < i) cr = chunk.indexOf(CR, i);
      if (lf !== -1 && lf < i) lf = chunk.indexOf(LF, i);
      const t = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (t === -1) {
        atLineStart = false;
        break;
      }
      const blank = atLineStart && t === i;
      atLineStart = true;
      if (chunk[t] === LF) {
        i = t + 1;
        if (blank) {
          emitBlock(chunk, start, i);
          start = i;
        }
        continue;
      }
      if (t + 1 === n) {
        afterCr = true;
        blockEndsAfterCr = blank;
        i = n;
        break;
      }
      i = chunk[t + 1] === LF ? t + 2 : t + 1;
      if (blank) {
        emitBlock(chunk, start, i);
        start = i;
      }
    }
    holdTail(chunk, start);
  }

  function feed(chunk: Uint8Array): void {
    if (ended) return;
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

  function end(): Uint8Array | null {
    if (ended) return null;
    ended = true;
    try {
      if (blockEndsAfterCr) {
        blockEndsAfterCr = false;
        emitBlock(EMPTY, 0, 0);
        return null;
      }
      const rest = heldBytes === 0 ? null : concatBytes(held, EMPTY);
      held = [];
      heldBytes = 0;
      return rest;
    } catch {
      errors++;
      return null;
    }
  }

  return { feed, end, stats: () => ({ blocks, oversized, errors }) };
}
