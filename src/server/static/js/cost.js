/** Cost over time by model: stacked bars, the largest models each in their own colour. */
import { axisStyle, barsPath, dropCharts, PALETTE, tooltipPlugin, upsertChart, usdAxis } from './charts.js';
import { $, empty, h } from './dom.js';
import { fmtDate, fmtUsd, nameOf } from './format.js';
import { INTERVAL_MS } from './time.js';

/** More models than this share one "N other models" band. */
const TOP_MODELS = 7;

export function renderCost(result, range) {
  const container = $('#chart-cost');
  const legend = $('#legend-cost');
  const intervalMs = INTERVAL_MS[result.interval];
  // Unpriced models have no cost to stack (the cost tile says how many calls they made).
  const all = result.series
    .map((s) => ({
      label: s.other ? `${s.other_groups} other models` : nameOf(s.key.model),
      models: s.other ? s.other_groups : 1,
      values: s.points.map((p) => p.value ?? 0),
    }))
    .filter((s) => s.values.some((v) => v > 0));
  const shown = all.slice(0, TOP_MODELS);
  const rest = all.slice(TOP_MODELS);
  if (rest.length > 0) {
    shown.push({
      label: `${rest.reduce((n, s) => n + s.models, 0)} other models`,
      values: rest[0].values.map((_, i) => rest.reduce((sum, s) => sum + s.values[i], 0)),
    });
  }
  const points = result.series[0]?.points ?? [];
  $('#cost-hint').textContent = `USD per ${result.interval}, ${range.label}`;
  if (shown.length === 0 || points.length === 0) {
    dropCharts((key) => key !== 'cost');
    container.replaceChildren(empty('No calls in this range yet.'));
    legend.replaceChildren();
    return;
  }
  if (container.querySelector('.empty')) container.replaceChildren();

  // Stacked bars: series i is drawn as the running total of models 0..i, largest first, so
  // each model shows as its own band.
  const x = points.map((p) => (Date.parse(p.t) + intervalMs / 2) / 1000);
  const cumulative = [];
  let running = x.map(() => 0);
  for (const s of shown) {
    running = running.map((v, i) => v + s.values[i]);
    cumulative.push(running);
  }
  const order = shown.map((_, i) => i).reverse();
  const data = [x, ...order.map((i) => cumulative[i])];
  const xMin = Date.parse(points[0].t) / 1000;
  const xMax = (Date.parse(points[points.length - 1].t) + intervalMs) / 1000;
  const colors = shown.map((_, i) => PALETTE[i % PALETTE.length]);
  const shape = `${result.interval}|${shown.map((s) => s.label).join('\u0000')}`;

  upsertChart(
    'cost',
    container,
    shape,
    () => ({
      height: 260,
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [xMin, xMax] },
        y: { range: (_u, _min, max) => [0, max * 1.08 || 1] },
      },
      axes: [{ ...axisStyle }, usdAxis],
      series: [
        {},
        ...order.map((i) => ({
          label: shown[i].label,
          stroke: colors[i],
          fill: `${colors[i]}d9`,
          width: 0,
          paths: barsPath({ size: [0.82, 56], gap: 1 }),
          points: { show: false },
        })),
      ],
      plugins: [
        tooltipPlugin((_u, idx) => {
          const total = cumulative[cumulative.length - 1][idx];
          if (!total) return null;
          return [
            h('div', { class: 'tt-title', text: fmtDate(Date.parse(points[idx].t)) }),
            ...shown
              .map((s, i) => ({ s, i }))
              .filter(({ s }) => s.values[idx] > 0)
              .map(({ s, i }) =>
                h(
                  'div',
                  { class: 'tt-row' },
                  h('span', { class: 'dot', color: colors[i] }),
                  h('span', { class: 'tt-label', text: s.label }),
                  h('span', { class: 'tt-value', text: fmtUsd(s.values[idx]) }),
                ),
              ),
            h(
              'div',
              { class: 'tt-row tt-total' },
              h('span', { text: 'total' }),
              h('span', { text: fmtUsd(total) }),
            ),
          ];
        }),
      ],
    }),
    data,
  );

  legend.replaceChildren(
    ...shown.map((s, i) =>
      h(
        'span',
        { class: 'legend-item' },
        h('span', { class: 'dot', color: colors[i] }),
        h('span', { class: 'legend-label', text: s.label }),
        h('span', { class: 'legend-value', text: fmtUsd(s.values.reduce((a, b) => a + b, 0)) }),
      ),
    ),
  );
}
