/**
 * uPlot charts that live across refreshes, and what they share: colours, axes, the tooltip.
 * uPlot is the global its IIFE build defines (a deferred script that runs before the modules);
 * only this module touches it.
 */
import { h } from './dom.js';
import { fmtUsd } from './format.js';

export const PALETTE = [
  '#4f6bed',
  '#e8833a',
  '#22a06b',
  '#d6455d',
  '#8f63d2',
  '#c79a16',
  '#1f9fbf',
  '#8a96a8',
];

/** Charts by key, with the shape of series they were built for. */
const charts = new Map();

export const barsPath = (options) => globalThis.uPlot.paths.bars(options);
export const steppedPath = (options) => globalThis.uPlot.paths.stepped(options);

/** A hover box listing each series' value at the cursor. */
export function tooltipPlugin(describe) {
  let box;
  return {
    hooks: {
      init(u) {
        box = h('div', { class: 'tooltip' });
        box.hidden = true;
        u.over.append(box);
      },
      setCursor(u) {
        const idx = u.cursor.idx;
        const lines = idx === null || idx === undefined ? null : describe(u, idx);
        if (!lines) {
          box.hidden = true;
          return;
        }
        box.replaceChildren(...lines);
        box.hidden = false;
        const left = u.cursor.left ?? 0;
        const flip = left > u.over.clientWidth / 2;
        box.style.left = flip ? '' : `${left + 12}px`;
        box.style.right = flip ? `${u.over.clientWidth - left + 12}px` : '';
        box.style.top = '8px';
      },
    },
  };
}

export const axisStyle = {
  stroke: '#667085',
  grid: { stroke: '#eef0f4', width: 1 },
  ticks: { stroke: '#e4e7ec', width: 1 },
  font: '11px system-ui, -apple-system, "Segoe UI", sans-serif',
};

/** Axis labels: as many digits as the ticks need, no trailing zeros. */
const axisUsd = (v) => (v === 0 ? '$0' : Math.abs(v) >= 1000 ? fmtUsd(v) : `$${Number(v.toPrecision(3))}`);

export const usdAxis = {
  ...axisStyle,
  values: (_u, ticks) => ticks.map(axisUsd),
  // Wide enough for the longest label: a fixed size clips long currency labels.
  size: (_u, values) =>
    values ? Math.ceil(Math.max(...values.map((v) => String(v).length)) * 6.6) + 18 : 48,
};

/**
 * A uPlot chart that lives across refreshes: rebuilt when its series change, otherwise
 * given new data. It follows its container's width.
 */
export function upsertChart(key, container, shape, makeOptions, data) {
  let entry = charts.get(key);
  if (entry && (entry.shape !== shape || !container.contains(entry.plot.root))) {
    entry.plot.destroy();
    entry.observer.disconnect();
    charts.delete(key);
    entry = undefined;
  }
  if (!entry) {
    const width = Math.max(240, container.clientWidth);
    const plot = new globalThis.uPlot({ ...makeOptions(), width }, data, container);
    const observer = new ResizeObserver(() => {
      const w = Math.max(240, container.clientWidth);
      if (w !== plot.width) plot.setSize({ width: w, height: plot.height });
    });
    observer.observe(container);
    entry = { plot, observer, shape };
    charts.set(key, entry);
  } else {
    entry.plot.setData(data);
  }
  return entry.plot;
}

/** Destroys every chart whose key `keep` refuses. */
export function dropCharts(keep) {
  for (const [key, entry] of charts) {
    if (keep(key)) continue;
    entry.plot.destroy();
    entry.observer.disconnect();
    charts.delete(key);
  }
}
