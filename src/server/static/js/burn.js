/** One budget's burn-down: the spend series it reads, and the chart of spend, forecast and limit. */
import { axisStyle, dropCharts, steppedPath, tooltipPlugin, upsertChart, usdAxis } from './charts.js';
import { empty, h } from './dom.js';
import { fmtDate, fmtUsd } from './format.js';
import { scopeFilters } from './scope.js';
import { DAY, INTERVAL_MS } from './time.js';

/** The timeseries query for the budget's spend this period, or null when the period has not begun. */
export function burnQuery(budget, now) {
  // A total budget has no period: show its spend since it was created, and at least a day.
  const start =
    budget.period === 'total'
      ? Math.min(Date.parse(budget.created_at), now - DAY)
      : Date.parse(budget.period_start);
  const end = budget.period_end ? Date.parse(budget.period_end) : now;
  const to = Math.min(now, end);
  if (!(to > start)) return null;
  const interval = budget.period === 'day' || budget.period === 'week' ? 'hour' : 'day';
  const params = {
    metric: 'cost_usd',
    interval,
    from: new Date(start).toISOString(),
    to: new Date(to).toISOString(),
    tz: budget.timezone || 'UTC',
    ...scopeFilters(budget.scope),
  };
  return { params, start, end, interval };
}

/** Burn-down: spend so far (a running total), the forecast to the period end, the limit. */
export function drawBurn(container, budget, series, now) {
  if (!series) {
    container.replaceChildren(empty('No spend yet this period.'));
    dropCharts((key) => key !== `budget:${budget.id}`);
    return;
  }
  if (container.querySelector('.empty')) container.replaceChildren();
  const { result, start, end, interval } = series;
  const points = result.series[0]?.points ?? [];
  const step = INTERVAL_MS[interval];
  const xs = [start / 1000];
  const spent = [0];
  let running = 0;
  for (const p of points) {
    running += p.value ?? 0;
    const t = Math.min(now, Date.parse(p.t) + step);
    if (t <= start) continue;
    xs.push(t / 1000);
    spent.push(running);
  }
  if (budget.period === 'total') {
    // Spend counted before the budget existed (creation back-fills it from usage).
    const base = Math.max(0, budget.spent_usd - running);
    for (let i = 0; i < spent.length; i++) spent[i] += base;
  }
  xs.push(now / 1000);
  spent.push(budget.spent_usd);
  const forecast = xs.map(() => null);
  forecast[forecast.length - 1] = budget.spent_usd;
  if (budget.forecast_usd !== null && budget.period_end) {
    xs.push(end / 1000);
    spent.push(null);
    forecast.push(budget.forecast_usd);
  }
  const limit = xs.map(() => budget.limit_usd);
  const xMax = (budget.period_end ? end : now) / 1000;
  const yMax = Math.max(budget.limit_usd, budget.forecast_usd ?? 0, budget.spent_usd) * 1.12 || 1;
  upsertChart(
    `budget:${budget.id}`,
    container,
    `${budget.period}`,
    () => ({
      height: 150,
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [start / 1000, xMax] },
        y: { range: () => [0, yMax] },
      },
      axes: [
        { ...axisStyle, ticks: { show: false } },
        { ...usdAxis, ticks: { show: false } },
      ],
      series: [
        {},
        {
          label: 'spent',
          stroke: '#4f6bed',
          fill: '#4f6bed22',
          width: 2,
          paths: steppedPath({ align: 1 }),
          points: { show: false },
        },
        {
          label: 'forecast',
          stroke: '#e8833a',
          width: 2,
          dash: [6, 5],
          spanGaps: true,
          points: { show: false },
        },
        { label: 'limit', stroke: '#d6455d', width: 1.5, dash: [2, 4], points: { show: false } },
      ],
      plugins: [
        tooltipPlugin((u, idx) => {
          const rows = [
            ['spent', u.data[1][idx], '#4f6bed'],
            ['forecast', u.data[2][idx], '#e8833a'],
            ['limit', u.data[3][idx], '#d6455d'],
          ].filter((r) => r[1] !== null && r[1] !== undefined);
          return [
            h('div', { class: 'tt-title', text: fmtDate(u.data[0][idx] * 1000) }),
            ...rows.map(([label, value, color]) =>
              h(
                'div',
                { class: 'tt-row' },
                h('span', { class: 'dot', color }),
                h('span', { class: 'tt-label', text: label }),
                h('span', { class: 'tt-value', text: fmtUsd(value) }),
              ),
            ),
          ];
        }),
      ],
    }),
    [xs, spent, forecast, limit],
  );
}
