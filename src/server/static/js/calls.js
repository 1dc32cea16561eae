/** The latest calls, newest first, one table row each. */
import { $, h } from './dom.js';
import { fmtInt, fmtMs, fmtTime, fmtUsd, nameOf } from './format.js';
import { PHASES } from './phases.js';

const SHOWN = 15;

/** "queue / prefill / generation" in ms, each with the first letter of its source. */
const split = (e) =>
  PHASES.map(([, field, source]) =>
    e[field] === null || e[field] === undefined
      ? '—'
      : `${Math.round(e[field])}${e[source] ? e[source][0] : ''}`,
  ).join(' / ');

export function renderCalls(page) {
  const rows = page.events.slice(0, SHOWN);
  $('#calls-hint').textContent = rows.length ? `newest first, ${rows.length} shown` : '';
  const body = $('#calls tbody');
  if (rows.length === 0) {
    body.replaceChildren(h('tr', null, h('td', { colspan: '10', class: 'empty', text: 'No calls yet.' })));
    return;
  }
  body.replaceChildren(
    ...rows.map((e) =>
      h(
        'tr',
        { 'data-id': e.id },
        h('td', { class: 'mono', text: fmtTime(e.time), title: e.time }),
        h('td', { class: 'clip', text: nameOf(e.user), title: nameOf(e.user) }),
        h('td', { class: 'clip', text: nameOf(e.feature), title: nameOf(e.feature) }),
        h('td', {
          class: 'mono clip',
          text: nameOf(e.model),
          title: `${nameOf(e.model)} (${e.provider}, ${e.operation})`,
        }),
        h(
          'td',
          null,
          h('span', { class: `badge outcome-${e.outcome}`, text: e.outcome }),
          e.error_type ? h('span', { class: 'err-type mono', text: ` ${e.error_type}` }) : null,
        ),
        h('td', {
          class: 'num',
          text: `${fmtInt(e.input_tokens)} / ${fmtInt(e.output_tokens)}${e.tokens_source === 'estimated' ? '~' : ''}`,
        }),
        h('td', { class: 'num', text: e.cost_usd === null ? 'unpriced' : fmtUsd(e.cost_usd) }),
        h('td', { class: 'num', text: fmtMs(e.ttft_ms) }),
        h('td', { class: 'num', text: fmtMs(e.duration_ms) }),
        h('td', {
          class: 'mono small',
          text: split(e),
          title: 'ms; p = provider, e = estimated, o = observed',
        }),
      ),
    ),
  );
}
