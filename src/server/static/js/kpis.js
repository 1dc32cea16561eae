/** The totals tiles. Each also carries its figures as data attributes, exactly as the API gave them. */
import { $, h } from './dom.js';
import { fmtCompact, fmtInt, fmtMs, fmtPct, fmtUsd } from './format.js';

/** `value` is a text, or [main, secondary] where the secondary part is set smaller. */
function setTile(id, value, sub, data) {
  const tile = $(`#${id}`);
  const [main, second] = Array.isArray(value) ? value : [value, null];
  tile
    .querySelector('.value')
    .replaceChildren(main, second === null ? '' : h('small', { text: ` / ${second}` }));
  tile.querySelector('.sub').textContent = sub;
  for (const [k, v] of Object.entries(data)) tile.dataset[k] = v === null ? '' : String(v);
}

export function renderKpis(totals, rangeLabel) {
  const perCall = totals.requests > 0 && totals.cost_usd !== null ? totals.cost_usd / totals.requests : null;
  setTile(
    'kpi-cost',
    fmtUsd(totals.cost_usd),
    totals.unpriced_requests > 0
      ? `${fmtInt(totals.unpriced_requests)} unpriced: a lower bound`
      : perCall === null
        ? rangeLabel
        : `${fmtUsd(perCall)} per call`,
    { value: totals.cost_usd },
  );
  setTile('kpi-requests', fmtInt(totals.requests), rangeLabel, { value: totals.requests });
  setTile(
    'kpi-errors',
    fmtInt(totals.errors),
    totals.requests > 0 ? `${fmtPct(totals.errors / totals.requests)} of requests` : '',
    { value: totals.errors },
  );
  setTile(
    'kpi-tokens',
    [fmtCompact(totals.input_tokens), fmtCompact(totals.output_tokens)],
    totals.cached_input_tokens > 0
      ? `${fmtCompact(totals.cached_input_tokens)} cached input`
      : 'input / output',
    { input: totals.input_tokens, output: totals.output_tokens },
  );
  setTile('kpi-latency', [fmtMs(totals.latency_p50_ms), fmtMs(totals.latency_p95_ms)], 'whole call', {
    p50: totals.latency_p50_ms,
    p95: totals.latency_p95_ms,
  });
  setTile('kpi-ttft', [fmtMs(totals.ttft_p50_ms), fmtMs(totals.ttft_p95_ms)], 'streamed calls', {
    p50: totals.ttft_p50_ms,
    p95: totals.ttft_p95_ms,
  });
}
