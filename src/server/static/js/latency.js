/** Latency per model: p50 inside p95, for the whole call and for the first token. */
import { $, empty, h } from './dom.js';
import { fmtMs, groupName } from './format.js';

export function renderLatency(byModel) {
  const rows = byModel.rows
    .filter((r) => r.latency_p50_ms !== null)
    .sort((a, b) => b.requests - a.requests)
    .slice(0, 8);
  const target = $('#latency');
  if (rows.length === 0) {
    target.replaceChildren(empty('No calls in this range.'));
    return;
  }
  const max = Math.max(...rows.map((r) => Math.max(r.latency_p95_ms ?? 0, r.ttft_p95_ms ?? 0))) || 1;
  const track = (label, p50, p95) =>
    h(
      'div',
      { class: 'range-row' },
      h('span', { class: 'range-label', text: label }),
      h(
        'span',
        { class: 'track' },
        p95 === null ? null : h('span', { class: 'p95', width: `${(p95 / max) * 100}%` }),
        p50 === null ? null : h('span', { class: 'p50', width: `${(p50 / max) * 100}%` }),
      ),
      h('span', { class: 'range-value', text: p50 === null ? '—' : `${fmtMs(p50)} / ${fmtMs(p95)}` }),
    );
  target.replaceChildren(
    ...rows.map((r) =>
      h(
        'div',
        { class: 'range-model', 'data-model': groupName(r, 'model') },
        h('div', { class: 'model-name', text: groupName(r, 'model'), title: groupName(r, 'model') }),
        track('latency', r.latency_p50_ms, r.latency_p95_ms),
        track('TTFT', r.ttft_p50_ms, r.ttft_p95_ms),
      ),
    ),
  );
}
