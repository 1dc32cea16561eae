/** Bodies cut into chunks and put back together, for the tests of what reads them piece by piece. */

/** The parts, end to end. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Chunks of `body` cut at `points` (any naturals, taken modulo its length + 1). A cut at the
 * start or the end gives an empty chunk there.
 */
export function cut(body: Uint8Array, points: readonly number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => p % (body.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of at) {
    chunks.push(body.subarray(prev, p));
    prev = p;
  }
  chunks.push(body.subarray(prev));
  return chunks;
}

/** Cuts `bytes` at the offsets inside it (0 and the end are not cuts), so no piece is empty. */
export function splitAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  return cut(
    bytes,
    offsets.filter((o) => o > 0 && o < bytes.length),
  );
}
