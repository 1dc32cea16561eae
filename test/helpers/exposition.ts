/**
 * Reads Prometheus text format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/)
 * into samples, for asserting on what /metrics serves.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` per metric family. */
  types: Map<string, string>;
  /** Every sample name (histograms give `_bucket`, `_sum`, `_count`). */
  names: Set<string>;
  /** Label names seen on each sample name. */
  labels: Map<string, Set<string>>;
  /** Samples of one name whose labels include `match`. */
  find(name: string, match?: Record<string, string>): Sample[];
  /** The sum of those samples' values. */
  sum(name: string, match?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

const unescapeLabel = (value: string) =>
  value.replace(/\\(.)/g, (_, c: string) =>
    c === 'n' ? '\n' : c === '"' ? '"' : c === '\\' ? '\\' : `\\${c}`,
  );

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`Not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(LABEL)) labels[label[1]!] = unescapeLabel(label[2]!);
    samples.push({ name: match[1]!, labels, value: parseValue(match[3]!) });
  }
  const names = new Set(samples.map((s) => s.name));
  const labels = new Map<string, Set<string>>();
  for (const s of samples) {
    const set = labels.get(s.name) ?? new Set<string>();
    for (const key of Object.keys(s.labels)) set.add(key);
    labels.set(s.name, set);
  }
  const find = (name: string, match: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  return {
    samples,
    types,
    names,
    labels,
    find,
    sum: (name, match) => find(name, match).reduce((total, s) => total + s.value, 0),
  };
}
