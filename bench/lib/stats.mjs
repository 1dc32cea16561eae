// Shared helpers for the benchmarks: order statistics, "median (min–max)" summaries, number
// formatting, Markdown tables and argument parsing. No dependencies; plain ESM.

/** `--key=value` and `--flag` arguments as an object (`--flag` is the string 'true'). */
export function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(
    argv.map((arg) => {
      const [key, ...rest] = arg.replace(/^--/, '').split('=');
      return [key, rest.length > 0 ? rest.join('=') : 'true'];
    }),
  );
}

/** Linear-interpolated quantile (q in [0, 1]) of a list of numbers; NaN when empty. */
export function quantile(xs, q) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo] + (s[hi] - s[lo]) * (at - lo);
}

export const median = (xs) => quantile(xs, 0.5);

/** Quantile of a Float64Array already sorted ascending. */
export function sortedQuantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** { median, min, max, n } of the finite values in xs. */
export function summarize(xs) {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

/** 1,234.5 with a fixed number of decimals; '–' for a missing or non-finite value. */
export function fmt(n, digits = 0) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Like fmt, with an explicit sign (+12.3, −4.0). */
export function fmtSigned(n, digits = 0) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const body = fmt(Math.abs(n), digits);
  if (Number(body.replace(/,/g, '')) === 0) return body;
  return n < 0 ? `−${body}` : `+${body}`;
}

/**
 * "median (min–max)" of xs (or of a summary object): the form every benchmark figure takes.
 * `full`: always the whole form with an en dash, even where min and max print the same or min is
 * negative (bench/fetch.mjs's tables have always read that way).
 */
export function range(xsOrSummary, digits = 0, { signed = false, suffix = '', full = false } = {}) {
  const s = Array.isArray(xsOrSummary) ? summarize(xsOrSummary) : xsOrSummary;
  if (!s || s.n === 0) return '–';
  const f = signed ? fmtSigned : fmt;
  if (!full && (s.n === 1 || f(s.min, digits) === f(s.max, digits))) return `${f(s.median, digits)}${suffix}`;
  // An en dash between unsigned figures; "to" where a minus sign could be mistaken for it.
  const between = !full && (signed || s.min < 0) ? ' to ' : '–';
  return `${f(s.median, digits)}${suffix} (${f(s.min, digits)}${between}${f(s.max, digits)})`;
}

/** A Markdown table. `rows` are arrays of cells (already strings). */
export function table(header, rows, align) {
  const sep = header.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  const line = (cells) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), `|${sep.join('|')}|`, ...rows.map(line)].join('\n');
}

/** Nanoseconds on the system-wide monotonic clock: comparable between processes on one machine. */
export const nowNs = () => Number(process.hrtime.bigint());

/** Run the garbage collector a few times (needs --expose-gc). */
export function settleGc() {
  if (typeof globalThis.gc !== 'function') return;
  for (let i = 0; i < 4; i++) globalThis.gc();
}
