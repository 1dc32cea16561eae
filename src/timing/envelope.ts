/**
 * The lower envelope of time-to-first-token against input tokens, per model.
 *
 * Time to first token is network + queue + prefill. Queue time is never negative, so the
 * fastest calls seen at each input size bound network + prefill from below: the lower convex
 * hull of (input tokens, TTFT) is the envelope, its intercept the network/overhead floor, its
 * slope the prefill time per token, and a call's excess over it is its queue time.
 *
 * Pure functions over an immutable list of points: the caller keeps the state.
 */

export interface EnvelopePoint {
  readonly x: number;
  readonly y: number;
}

/** Points are kept per quarter-octave of input tokens: enough resolution, bounded memory. */
function bucketOf(x: number): number {
  return Math.floor(Math.log2(x + 1) * 4);
}

/** Add an observation, keeping the fastest call per bucket. Returns a new list sorted by x. */
export function observe(points: readonly EnvelopePoint[], x: number, y: number): readonly EnvelopePoint[] {
  if (!Number.isFinite(x) || !Number.isFinite(y) || x < 0 || y < 0) return points;
  const bucket = bucketOf(x);
  const i = points.findIndex((p) => bucketOf(p.x) === bucket);
  if (i >= 0) {
    const existing = points[i]!;
    if (existing.y <= y) return points;
    const next = points.slice();
    next[i] = { x, y };
    return next.sort((a, b) => a.x - b.x);
  }
  return [...points, { x, y }].sort((a, b) => a.x - b.x);
}

function cross(o: EnvelopePoint, a: EnvelopePoint, b: EnvelopePoint): number {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/** Lower convex hull (Andrew's monotone chain), points sorted by x. */
function lowerHull(points: readonly EnvelopePoint[]): EnvelopePoint[] {
  const hull: EnvelopePoint[] = [];
  for (const p of points) {
    while (hull.length >= 2 && cross(hull[hull.length - 2]!, hull[hull.length - 1]!, p) <= 0) hull.pop();
    hull.push(p);
  }
  return hull;
}

interface EnvelopeFit {
  /** Milliseconds at zero input tokens: network and fixed overhead. */
  interceptMs: number;
  /** Envelope value (network + prefill) at `x` input tokens. */
  at(x: number): number;
}

/**
 * Fit the envelope, or null while there is too little data to separate prefill from network
 * (fewer than two input sizes at least a factor of two apart).
 */
export function fitEnvelope(points: readonly EnvelopePoint[]): EnvelopeFit | null {
  if (points.length < 2) return null;
  const first = points[0]!;
  const last = points[points.length - 1]!;
  if (last.x < Math.max(1, first.x) * 2) return null;
  const hull = lowerHull(points);
  const slopeOf = (a: EnvelopePoint, b: EnvelopePoint) => Math.max(0, (b.y - a.y) / (b.x - a.x));
  const at = (x: number): number => {
    if (hull.length === 1) return hull[0]!.y;
    if (x <= hull[0]!.x) return Math.max(0, hull[0]!.y - slopeOf(hull[0]!, hull[1]!) * (hull[0]!.x - x));
    for (let i = 1; i < hull.length; i++) {
      const a = hull[i - 1]!;
      const b = hull[i]!;
      if (x <= b.x) return a.y + slopeOf(a, b) * (x - a.x);
    }
    const a = hull[hull.length - 2]!;
    const b = hull[hull.length - 1]!;
    return b.y + slopeOf(a, b) * (x - b.x);
  };
  return { interceptMs: at(0), at };
}

interface InferredSplit {
  queueMs: number;
  prefillMs: number;
  networkMs: number;
}

/** Split one call's time to first token with the envelope. */
export function splitTimeToFirstToken(fit: EnvelopeFit, inputTokens: number, ttftMs: number): InferredSplit {
  const envelope = fit.at(inputTokens);
  const networkMs = Math.min(fit.interceptMs, ttftMs);
  const prefillMs = Math.max(0, Math.min(envelope, ttftMs) - networkMs);
  return { queueMs: Math.max(0, ttftMs - envelope), prefillMs, networkMs };
}
