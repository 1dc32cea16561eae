/** fast-check arbitraries for the bodies the parsers are fuzzed with. */
import fc from 'fast-check';
import { concatBytes } from './bytes.js';

const encoder = new TextEncoder();

/** Bytes built from tokens, so that the rare cases (CR LF pairs, BOMs, broken UTF-8) are common. */
export function tokens(list: readonly (string | number[])[], maxLength: number): fc.Arbitrary<Uint8Array> {
  const encoded = list.map((t) => (typeof t === 'string' ? encoder.encode(t) : Uint8Array.from(t)));
  return fc.array(fc.constantFrom(...encoded), { maxLength }).map(concatBytes);
}

/** The tokens of JSON text that a JSON array parser must not lose track of. */
export const JSON_TOKENS = ['[', ']', '{', '}', '"', '\\', '\\"', ',', ':', ' ', '\r\n', '1', 'true'];
