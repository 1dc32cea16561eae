/** Byte helpers the body parsers and the wrapper share. */
import type { NumberCheck } from '../options.js';

/** What one event, line or element may take before a parser stops holding it. */
export const DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024;

/** A parser's byte cap, checked where it enters: a positive number, `Infinity` for no cap. */
export const BYTE_CAP: NumberCheck = { infinite: true };

/** The parts (and `last`, when given) in one fresh buffer. */
export function concatBytes(parts: readonly Uint8Array[], last?: Uint8Array): Uint8Array {
  let total = last?.byteLength ?? 0;
  for (const part of parts) total += part.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  if (last) out.set(last, offset);
  return out;
}

/** Calls a parser's hook; a hook that throws is counted by the parser (`onThrow`), never thrown. */
export function callHook<A>(hook: ((arg: A) => void) | undefined, arg: A, onThrow: () => void): void {
  if (hook === undefined) return;
  try {
    hook(arg);
  } catch {
    onThrow();
  }
}
