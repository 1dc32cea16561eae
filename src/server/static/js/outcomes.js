/** Outcomes and errors: a chip per outcome, then the error classes (`error.type`) by count. */
import { $, empty, h } from './dom.js';
import { fmtInt } from './format.js';

const OUTCOME_ORDER = ['ok', 'error', 'cancelled', 'blocked'];

/** `errorEvents` is one page of at most `limit` failed calls, newest first. */
export function renderOutcomes(byOutcome, errorEvents, limit) {
  const counts = new Map(byOutcome.rows.map((r) => [r.outcome, r.requests]));
  $('#outcomes').replaceChildren(
    ...OUTCOME_ORDER.filter((o) => counts.has(o)).map((o) =>
      h('span', { class: `chip outcome-${o}` }, h('b', { text: fmtInt(counts.get(o)) }), ` ${o}`),
    ),
  );
  const classes = new Map();
  for (const event of errorEvents.events) {
    const type = event.error_type || (event.http_status ? String(event.http_status) : 'unknown');
    classes.set(type, (classes.get(type) || 0) + 1);
  }
  $('#errors-hint').textContent =
    errorEvents.next_cursor === null ? 'by error.type' : `latest ${fmtInt(limit)} errors`;
  const list = $('#error-classes');
  if (classes.size === 0) {
    list.replaceChildren(empty('No errors in this range.'));
    return;
  }
  const rows = [...classes].sort((a, b) => b[1] - a[1]).slice(0, 8);
  const max = rows[0][1];
  list.replaceChildren(
    ...rows.map(([type, n]) =>
      h(
        'li',
        { 'data-name': type },
        h('span', { class: 'name mono', text: type, title: type }),
        h('span', { class: 'bar' }, h('span', { width: `${(n / max) * 100}%`, class: 'bar-fill err' })),
        h('span', { class: 'value', text: fmtInt(n) }),
        h('span', { class: 'count', text: n === 1 ? 'call' : 'calls' }),
      ),
    ),
  );
}
