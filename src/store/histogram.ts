/**
 * Fixed log-bucket histograms of milliseconds, for latency percentiles that add up across
 * rollup rows (exact percentiles do not).
 *
 * Bucket 0 holds [0, 1) ms; bucket i >= 1 holds [2^((i-1)/8), 2^(i/8)) ms, eight buckets per
 * doubling, up to bucket 255 (about 41 days). A percentile is reported as its bucket's
 * geometric midpoint, so it is within 2^(1/16) - 1 = 4.4% of the exact value (for values of
 * 1 ms and more; below 1 ms it reads 0.5). Raw rows and rollups use the same buckets, so a
 * report reads the same whichever it was served from.
 *
 * Encoded as a BLOB of sorted (index, count) pairs, only the non-empty buckets: a format byte
 * (1: u8 index + u32 LE count; 2: u8 index + f64 LE count, used when a count passes 2^32 - 1).
 */
import type { SqliteDatabase } from './connection.js';

export const BUCKETS = 256;
const PER_DOUBLING = 8;

export type Histogram = Float64Array;

export function newHistogram(): Histogram {
  return new Float64Array(BUCKETS);
}

export function bucketIndex(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(BUCKETS - 1, 1 + Math.floor(PER_DOUBLING * Math.log2(ms)));
}

/** The value a bucket reports: its geometric midpoint. */
export function bucketValue(index: number): number {
  return index === 0 ? 0.5 : 2 ** ((index - 0.5) / PER_DOUBLING);
}

export function addValue(histogram: Histogram, ms: number | null | undefined): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return;
  histogram[bucketIndex(ms)]! += 1;
}

export function addEncoded(histogram: Histogram, blob: Uint8Array | null | undefined): void {
  if (!blob || blob.length === 0) return;
  // Plain byte reads: this runs once per rollup row in every report, a DataView would be garbage.
  if (blob[0] === 2) {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    for (let offset = 1; offset + 9 <= blob.length; offset += 9) {
      histogram[blob[offset]!]! += view.getFloat64(offset + 1, true);
    }
    return;
  }
  for (let offset = 1; offset + 5 <= blob.length; offset += 5) {
    histogram[blob[offset]!]! +=
      blob[offset + 1]! +
      blob[offset + 2]! * 0x100 +
      blob[offset + 3]! * 0x1_0000 +
      blob[offset + 4]! * 0x100_0000;
  }
}

export function addHistogram(target: Histogram, source: Histogram): void {
  for (let i = 0; i < BUCKETS; i++) target[i]! += source[i]!;
}

export function encode(histogram: Histogram): Buffer {
  let nonEmpty = 0;
  let wide = false;
  for (let i = 0; i < BUCKETS; i++) {
    const count = histogram[i]!;
    if (count > 0) {
      nonEmpty++;
      if (count > 0xffff_ffff) wide = true;
    }
  }
  const step = wide ? 9 : 5;
  const blob = Buffer.allocUnsafe(1 + nonEmpty * step);
  blob.writeUInt8(wide ? 2 : 1, 0);
  let offset = 1;
  for (let i = 0; i < BUCKETS; i++) {
    const count = histogram[i]!;
    if (count <= 0) continue;
    blob.writeUInt8(i, offset);
    if (wide) blob.writeDoubleLE(count, offset + 1);
    else blob.writeUInt32LE(count, offset + 1);
    offset += step;
  }
  return blob;
}

/** Encode a list of bucket indices (one per value), without a 256-slot array per group. */
export function encodeIndices(indices: number[]): Buffer {
  indices.sort((a, b) => a - b);
  let distinct = 0;
  for (let i = 0; i < indices.length; i++) if (i === 0 || indices[i] !== indices[i - 1]) distinct++;
  const blob = Buffer.allocUnsafe(1 + distinct * 5);
  blob.writeUInt8(1, 0);
  let offset = 1;
  for (let i = 0; i < indices.length; ) {
    const index = indices[i]!;
    let count = 0;
    while (i < indices.length && indices[i] === index) {
      count++;
      i++;
    }
    blob.writeUInt8(index, offset);
    blob.writeUInt32LE(count, offset + 1);
    offset += 5;
  }
  return blob;
}

/** Nearest-rank percentile (p in 0..1); null for an empty histogram. */
export function percentile(histogram: Histogram, p: number): number | null {
  let total = 0;
  for (let i = 0; i < BUCKETS; i++) total += histogram[i]!;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += histogram[i]!;
    if (seen >= rank) return Math.round(bucketValue(i) * 10) / 10;
  }
  return Math.round(bucketValue(BUCKETS - 1) * 10) / 10;
}

const scratch = newHistogram();

function mergeEncoded(a: Uint8Array | null, b: Uint8Array | null): Buffer {
  scratch.fill(0);
  addEncoded(scratch, a);
  addEncoded(scratch, b);
  return encode(scratch);
}

/**
 * SQL functions over these histograms, registered on every connection that writes or reports:
 * `llm_meter_hist_add(a, b)` merges two encoded histograms (rollup upserts),
 * `llm_meter_hist_sum(blob)` merges a column of them, `llm_meter_hist_of(ms)` builds one from
 * raw values (NULLs skipped).
 */
export function registerHistogramFunctions(db: SqliteDatabase): void {
  db.function('llm_meter_hist_add', { deterministic: true }, (a: unknown, b: unknown) =>
    mergeEncoded(asBlob(a), asBlob(b)),
  );
  db.aggregate('llm_meter_hist_sum', {
    start: newHistogram,
    step: (histogram: Histogram, blob: unknown) => {
      addEncoded(histogram, asBlob(blob));
    },
    result: encode,
  });
  db.aggregate('llm_meter_hist_of', {
    start: newHistogram,
    step: (histogram: Histogram, ms: unknown) => {
      addValue(histogram, typeof ms === 'number' ? ms : typeof ms === 'bigint' ? Number(ms) : null);
    },
    result: encode,
  });
}

function asBlob(value: unknown): Uint8Array | null {
  return value instanceof Uint8Array ? value : null;
}
