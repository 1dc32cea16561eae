/** A top-N list by cost (top users, top features): one bar per name. */
import { empty, h } from './dom.js';
import { fmtInt, fmtUsd, groupName } from './format.js';

export function renderBarList(target, rows, key, color) {
  const sorted = [...rows].sort((a, b) => (b.cost_usd ?? 0) - (a.cost_usd ?? 0) || b.requests - a.requests);
  const top = sorted.slice(0, 8);
  if (top.length === 0) {
    target.replaceChildren(empty('No calls in this range.'));
    return;
  }
  const max = Math.max(...top.map((r) => r.cost_usd ?? 0)) || 1;
  target.replaceChildren(
    ...top.map((row) =>
      h(
        'li',
        { 'data-name': groupName(row, key) },
        h('span', { class: 'name', text: groupName(row, key), title: groupName(row, key) }),
        h(
          'span',
          { class: 'bar' },
          h('span', {
            class: 'bar-fill',
            width: `${Math.max(1.5, ((row.cost_usd ?? 0) / max) * 100)}%`,
            color,
          }),
        ),
        h('span', { class: 'value', text: fmtUsd(row.cost_usd) }),
        h('span', { class: 'count', text: `${fmtInt(row.requests)} calls` }),
      ),
    ),
  );
}
