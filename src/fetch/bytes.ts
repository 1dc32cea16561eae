/** Byte helpers the body parsers and the wrapper share. */

/** What one event, line or element may take before a parser stops holding it. */
export const DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024;

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

/** A parser's byte cap option, checked where it enters: a positive number (`Infinity`: no cap), or `fallback` when not given. */
export function checkMaxBytes(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`Expected \`${name}\` to be a positive number.`);
  }
  return value;
}
