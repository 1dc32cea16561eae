/**
 * Server-sent events, read as the HTML standard's "Interpreting an event stream" says:
 * https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 *
 * The parser reads beside a body that goes to the caller unchanged, so it never throws: a throwing
 * callback or a bad chunk is counted in `errors`, an event over `maxEventBytes` is dropped and
 * counted in `oversized`, and nothing is held beyond the event being read.
 */
import { Buffer } from 'node:buffer';
import { positiveNumber } from '../options.js';
import { BYTE_CAP, callHook, DEFAULT_MAX_EVENT_BYTES } from './bytes.js';

export interface SseEvent {
  /** The `event` field; '' when the event has none, which the spec reads as 'message'. */
  event: string;
  data: string;
  /**
   * The last event ID buffer at dispatch. Per the spec it is not reset between events, so an
   * event without an `id` field carries the one before it; undefined until the stream sets one.
   */
  id: string | undefined;
  /** A valid `retry` field (ASCII digits, milliseconds) among this event's own lines. */
  retry?: number;
}

export interface SseEndState {
  /**
   * Bytes after the last blank line: an event the stream cut off, which is never dispatched.
   * Sizes here are of the decoded text in UTF-8, so a byte that is not UTF-8 counts as U+FFFD.
   */
  pendingBytes: number;
  dispatched: number;
  /** Callbacks that threw and chunks that could not be read. */
  errors: number;
  /** Events dropped for being larger than `maxEventBytes`. */
  oversized: number;
}

interface SseParserOptions {
  onEvent(ev: SseEvent): void;
  /** Text after the ':' of a comment line, one leading space removed (like a field value). */
  onComment?(text: string): void;
  /** Bytes one event may take on the wire, its lines and their line ends. Default 8 MiB. */
  maxEventBytes?: number;
  /**
   * An event over `maxEventBytes` was dropped: `bytes` of it were not read (all of it, once its
   * blank line or the end of the stream comes). What it said is unknown, so usage is estimated.
   */
  onOversized?(bytes: number): void;
}

interface SseParser {
  feed(chunk: Uint8Array | string): void;
  /** Flushes the decoder; a partial last event is not dispatched (spec: "discarded"). */
  end(): SseEndState;
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const COLON = 0x3a;
const BOM = 0xfeff;

export function createSseParser(options: SseParserOptions): SseParser {
  const { onEvent, onComment } = options;
  const maxEventBytes = positiveNumber(
    'maxEventBytes',
    options.maxEventBytes,
    DEFAULT_MAX_EVENT_BYTES,
    BYTE_CAP,
  );
  // The spec's "UTF-8 decode" strips one leading BOM; doing it by hand treats string chunks alike.
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  let decoderUsed = false;
  let started = false;
  let finalState: SseEndState | undefined;

  // The line being read. Its text is kept only while the event is not being discarded.
  let line = '';
  let lineBytes = 0;
  // A CR ended the last text: an LF that starts the next one is the rest of that line end.
  let skipLf = false;
  let skippedLfCounts = false;

  // The event being read.
  let eventBytes = 0;
  let discarding = false;
  let data: string[] = [];
  let eventType = '';
  let retry: number | undefined;
  let lastEventId: string | undefined;

  let dispatched = 0;
  let errors = 0;
  let oversized = 0;

  function resetEvent(): void {
    data = [];
    eventType = '';
    retry = undefined;
  }

  function drop(): void {
    oversized++;
    discarding = true;
    line = '';
    resetEvent();
  }

  const dropped = (bytes: number) => callHook(options.onOversized, bytes, () => errors++);

  function dispatch(): void {
    if (data.length === 0) return;
    const ev: SseEvent = { event: eventType, data: data.join('\n'), id: lastEventId };
    if (retry !== undefined) ev.retry = retry;
    dispatched++;
    try {
      onEvent(ev);
    } catch {
      errors++;
    }
  }

  function processField(text: string): void {
    if (text.charCodeAt(0) === COLON) {
      if (onComment === undefined) return;
      try {
        onComment(text.slice(text.charCodeAt(1) === SPACE ? 2 : 1));
      } catch {
        errors++;
      }
      return;
    }
    const colon = text.indexOf(':');
    let field = text;
    let value = '';
    if (colon !== -1) {
      field = text.slice(0, colon);
      value = text.slice(text.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1);
    }
    switch (field) {
      case 'event':
        eventType = value;
        break;
      case 'data':
        data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) lastEventId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) retry = Number.parseInt(value, 10);
        break;
    }
  }

  function completeLine(piece: string, terminatorBytes: number): void {
    const bytes = lineBytes + (piece.length === 0 ? 0 : Buffer.byteLength(piece, 'utf8'));
    const text = discarding ? '' : line.length === 0 ? piece : line + piece;
    line = '';
    lineBytes = 0;
    if (bytes === 0) {
      if (!discarding) dispatch();
      else dropped(eventBytes + terminatorBytes);
      discarding = false;
      eventBytes = 0;
      skippedLfCounts = false;
      resetEvent();
      return;
    }
    if (!discarding && eventBytes + bytes > maxEventBytes) drop();
    eventBytes += bytes + terminatorBytes;
    skippedLfCounts = true;
    if (!discarding) processField(text);
  }

  function appendPartial(piece: string): void {
    if (piece.length === 0) return;
    lineBytes += Buffer.byteLength(piece, 'utf8');
    if (discarding) return;
    if (eventBytes + lineBytes > maxEventBytes) drop();
    else line += piece;
  }

  function processText(text: string): void {
    const len = text.length;
    if (len === 0) return;
    let pos = 0;
    if (!started) {
      started = true;
      if (text.charCodeAt(0) === BOM) pos = 1;
    }
    if (skipLf && pos < len) {
      skipLf = false;
      if (text.charCodeAt(pos) === LF) {
        pos++;
        if (skippedLfCounts) eventBytes++;
      }
    }
    let cr = text.indexOf('\r', pos);
    let lf = text.indexOf('\n', pos);
    while (pos < len) {
      if (cr !== -1 && cr < pos) cr = text.indexOf('\r', pos);
      if (lf !== -1 && lf < pos) lf = text.indexOf('\n', pos);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) {
        appendPartial(text.slice(pos));
        return;
      }
      let terminatorBytes = 1;
      if (text.charCodeAt(end) === CR) {
        if (end + 1 === len) skipLf = true;
        else if (text.charCodeAt(end + 1) === LF) terminatorBytes = 2;
      }
      const piece = text.slice(pos, end);
      pos = end + terminatorBytes;
      completeLine(piece, terminatorBytes);
    }
  }

  function feed(chunk: Uint8Array | string): void {
    if (finalState !== undefined) return;
    try {
      if (typeof chunk === 'string') {
        if (decoderUsed) {
          decoderUsed = false;
          processText(decoder.decode());
        }
        processText(chunk);
      } else {
        decoderUsed = true;
        processText(decoder.decode(chunk, { stream: true }));
      }
    } catch {
      errors++;
    }
  }

  function end(): SseEndState {
    if (finalState !== undefined) return finalState;
    try {
      if (decoderUsed) processText(decoder.decode());
    } catch {
      errors++;
    }
    if (discarding) dropped(eventBytes + lineBytes);
    finalState = { pendingBytes: eventBytes + lineBytes, dispatched, errors, oversized };
    line = '';
    resetEvent();
    return finalState;
  }

  return { feed, end };
}
