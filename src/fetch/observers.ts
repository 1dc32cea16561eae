/**
 * The parsers on the side of a response body: they see every byte the caller gets (and, for a
 * filtered stream, decide which), feed the adapter's parser, stamp token times, and end the call
 * when the body ends.
 */
import type { EventFilter } from '../providers/types.js';
import { concatBytes } from './bytes.js';
import type { Engine } from './engine.js';
import { createJsonArrayParser } from './json-array.js';
import { type CallState, callerAborted, endCall } from './lifecycle.js';
import { createNdjsonParser } from './ndjson.js';
import { createSseParser, type SseEvent } from './sse.js';
import { createSseFramer } from './sse-framer.js';
import type { BodyObserver } from './tap.js';

const encoder = new TextEncoder();
const textDecoder = new TextDecoder();

function endObserved(
  engine: Engine,
  state: CallState,
  how: 'done' | 'error' | 'cancel',
  error: unknown,
): void {
  const aborted =
    how === 'cancel' ? true : how === 'error' ? callerAborted(state.input, state.init, error) : false;
  endCall(engine, state, how, error ?? null, aborted);
}

/** Bytes of the response that were too large to parse: usage becomes an estimate. */
function unread(state: CallState, bytes: number): void {
  state.unreadBytes += bytes;
}

function onEvent(engine: Engine, state: CallState, event: SseEvent, at: number): void {
  state.chunks++;
  let output: boolean;
  try {
    output = state.parser.event(event);
  } catch (error) {
    engine.report('adapter.parser', error);
    return;
  }
  if (output) {
    state.firstTokenMs ??= at;
    state.lastTokenMs = at;
  }
}

export function sseObserver(engine: Engine, state: CallState): BodyObserver {
  let at = 0;
  const sse = createSseParser({
    onEvent: (event) => onEvent(engine, state, event, at),
    onOversized: (bytes) => unread(state, bytes),
  });
  return {
    chunk(bytes, atMs) {
      at = atMs;
      sse.feed(bytes);
      return bytes;
    },
    drain: () => null,
    finish(how, error) {
      sse.end();
      endObserved(engine, state, how, error);
    },
  };
}

/** NDJSON lines (Ollama) or the elements of one JSON array (Gemini), each one stream event. */
export function lineObserver(
  engine: Engine,
  state: CallState,
  format: 'ndjson' | 'json-array',
): BodyObserver {
  let at = 0;
  const onText = (data: string) => onEvent(engine, state, { event: '', data, id: undefined }, at);
  const onOversized = (bytes: number) => unread(state, bytes);
  const parser =
    format === 'ndjson'
      ? createNdjsonParser({ onLine: onText, onOversized })
      : createJsonArrayParser({ onElement: onText, onOversized });
  return {
    chunk(bytes, atMs) {
      at = atMs;
      parser.feed(bytes);
      return bytes;
    },
    drain: () => null,
    finish(how, error) {
      parser.end();
      endObserved(engine, state, how, error);
    },
  };
}

/** Frames whole events so a provider's filter can hide or rewrite them (see amendRequest). */
export function rewritingSseObserver(engine: Engine, state: CallState, filter: EventFilter): BodyObserver {
  let at = 0;
  let out: Uint8Array[] = [];
  // One spec parser for the whole stream, fed whole blocks: each block dispatches its events.
  let events: SseEvent[] = [];
  const parser = createSseParser({
    onEvent: (event) => events.push(event),
    maxEventBytes: Number.POSITIVE_INFINITY,
  });
  const framer = createSseFramer({
    onBlock(block, oversized) {
      // A piece of an event too large to hold goes to the caller as it came, unparsed.
      if (oversized) {
        unread(state, block.byteLength);
        out.push(block);
        return;
      }
      parser.feed(block);
      const parsed = events;
      events = [];
      let keep: Uint8Array | null = block;
      for (const event of parsed) {
        onEvent(engine, state, event, at);
        let verdict: ReturnType<EventFilter> = 'keep';
        try {
          verdict = filter(event);
        } catch (error) {
          engine.report('filter', error);
          verdict = 'keep';
        }
        if (verdict === 'drop') keep = null;
        else if (verdict !== 'keep') keep = encodeEvent(event.event, verdict, block);
      }
      if (keep) out.push(keep);
    },
  });
  const take = (): Uint8Array => {
    const parts = out;
    out = [];
    return parts.length === 1 ? parts[0]! : concatBytes(parts);
  };
  return {
    chunk(bytes, atMs) {
      at = atMs;
      framer.feed(bytes);
      return take();
    },
    drain() {
      // An unterminated last event goes to the caller as it came; like any stream's, it is
      // not an event (the spec discards it at the end).
      const rest = framer.end();
      if (rest && rest.byteLength > 0) out.push(rest);
      return take();
    },
    finish(how, error) {
      endObserved(engine, state, how, error);
    },
  };
}

function encodeEvent(name: string, data: string, original: Uint8Array): Uint8Array {
  const eol = original.includes(0x0d) ? (original.includes(0x0a) ? '\r\n' : '\r') : '\n';
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}`);
  return encoder.encode((name ? `event: ${name}${eol}` : '') + lines.join(eol) + eol + eol);
}

/** A whole JSON body: kept (by reference, no copy) up to the cap and parsed once at the end. */
export function jsonObserver(engine: Engine, state: CallState): BodyObserver {
  let parts: Uint8Array[] = [];
  let size = 0;
  let overflow = false;
  return {
    chunk(bytes) {
      size += bytes.byteLength;
      if (!overflow) {
        if (size > engine.maxResponseBodyBytes) {
          overflow = true;
          parts = [];
        } else parts.push(bytes);
      }
      return bytes;
    },
    drain: () => null,
    finish(how, error) {
      if (how === 'done' && !overflow) {
        const text = textDecoder.decode(parts.length === 1 ? parts[0]! : concatBytes(parts));
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          // Not JSON (an HTML error page from a proxy): the text stands for it; nothing failed.
          value = undefined;
        }
        if ((state.status ?? 0) >= 400) state.errorBody = value ?? text.slice(0, 2000);
        else if (value !== undefined) {
          try {
            state.parser.json(value);
          } catch (e) {
            engine.report('adapter.parser', e);
          }
        }
      }
      if (overflow) state.unreadBytes = size;
      parts = [];
      endObserved(engine, state, how, error);
    },
  };
}
