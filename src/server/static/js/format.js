/** How numbers, money, durations and times read on the page. */

const intFormat = new Intl.NumberFormat('en-US');
const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

export function fmtUsd(value) {
  if (value === null || value === undefined) return '—';
  const abs = Math.abs(value);
  if (abs === 0) return '$0.00';
  if (abs >= 1000) return `$${intFormat.format(Math.round(value))}`;
  if (abs >= 1) return `$${value.toFixed(2)}`;
  if (abs >= 0.01) return `$${value.toFixed(4)}`;
  // Three significant digits, never in exponent notation.
  return `$${value.toFixed(Math.min(12, 2 - Math.floor(Math.log10(abs))))}`;
}

export const fmtInt = (value) => (value === null || value === undefined ? '—' : intFormat.format(value));

export const fmtCompact = (value) =>
  value === null || value === undefined ? '—' : value < 10_000 ? fmtInt(value) : compactFormat.format(value);

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export const fmtPct = (ratio) => `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)}%`;

export const fmtTime = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });

export const fmtDate = (ms) =>
  new Date(ms).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** A caller-controlled name (user, feature, model) as it is shown; missing ones say so. */
export const nameOf = (value) =>
  value === null || value === undefined || value === '' ? '(none)' : String(value);

/** A summary row's name: its `key`, or how many groups the row past the API's limit adds up. */
export const groupName = (row, key) => (row.other ? `${fmtInt(row.other_groups)} others` : nameOf(row[key]));
