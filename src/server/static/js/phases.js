/** Where the time goes: average queue → prefill → generation per model, with their sources. */
import { $, empty, h } from './dom.js';
import { fmtInt, fmtMs, nameOf } from './format.js';

/** Each phase: its name, the event field with its duration, and the field saying where that came from. */
export const PHASES = [
  ['queue', 'queue_ms', 'queue_source'],
  ['prefill', 'prefill_ms', 'prefill_source'],
  ['generation', 'generation_ms', 'generation_source'],
];

/** `page` is one page of at most `limit` calls, newest first. */
export function renderPhases(page, limit) {
  const byModel = new Map();
  for (const e of page.events) {
    if (e.outcome !== 'ok') continue;
    const key = nameOf(e.model);
    let m = byModel.get(key);
    if (!m) {
      m = { model: key, n: 0, duration: 0, sums: {}, counts: {}, sources: {} };
      byModel.set(key, m);
    }
    m.n++;
    m.duration += e.duration_ms;
    for (const [name, field, sourceField] of PHASES) {
      if (e[field] === null || e[field] === undefined) continue;
      m.sums[name] = (m.sums[name] || 0) + e[field];
      m.counts[name] = (m.counts[name] || 0) + 1;
      const source = e[sourceField];
      if (source)
        m.sources[name] = { ...(m.sources[name] || {}), [source]: (m.sources[name]?.[source] || 0) + 1 };
    }
  }
  $('#phases-hint').textContent =
    `average per call, ${page.next_cursor === null ? 'successful calls in range' : `latest ${fmtInt(limit)} calls`}`;
  const models = [...byModel.values()].sort((a, b) => b.n - a.n).slice(0, 8);
  const target = $('#phases');
  if (models.length === 0) {
    target.replaceChildren(empty('No successful calls in this range.'));
    return;
  }
  const stats = models.map((m) => {
    const avg = (name) => (m.counts[name] ? m.sums[name] / m.counts[name] : 0);
    const phases = PHASES.map(([name]) => ({
      name,
      ms: avg(name),
      source: Object.entries(m.sources[name] || {}).sort((a, b) => b[1] - a[1])[0]?.[0] ?? null,
    }));
    const total = m.duration / m.n;
    const known = phases.reduce((sum, p) => sum + p.ms, 0);
    return { model: m.model, n: m.n, total, phases, other: Math.max(0, total - known) };
  });
  const max =
    Math.max(
      ...stats.map((s) =>
        Math.max(
          s.total,
          s.phases.reduce((a, p) => a + p.ms, 0),
        ),
      ),
    ) || 1;
  const head = h(
    'div',
    { class: 'phase-row head' },
    h('span', { text: 'model' }),
    h('span'),
    ...['queue', 'prefill', 'generation', 'total'].map((t) => h('span', { class: 'pv', text: t })),
  );
  target.replaceChildren(
    head,
    ...stats.map((s) =>
      h(
        'div',
        { class: 'phase-row', 'data-model': s.model },
        h('span', { class: 'model-name', text: s.model, title: `${s.model} (${s.n} calls)` }),
        h(
          'span',
          { class: 'phase-track' },
          ...s.phases
            .filter((p) => p.ms > 0)
            .map((p) =>
              h('span', {
                class: `seg ${p.name}`,
                width: `${(p.ms / max) * 100}%`,
                title: `${p.name}: ${fmtMs(p.ms)}${p.source ? ` (${p.source})` : ''}`,
              }),
            ),
          s.other > 0
            ? h('span', {
                class: 'seg other',
                width: `${(s.other / max) * 100}%`,
                title: `rest of the call: ${fmtMs(s.other)}`,
              })
            : null,
        ),
        ...s.phases.map((p) =>
          h(
            'span',
            { class: `pv ${p.name}` },
            p.ms > 0 ? fmtMs(p.ms) : '—',
            p.source && p.ms > 0 ? h('sup', { text: p.source[0], title: p.source }) : null,
          ),
        ),
        h('span', { class: 'pv total', text: fmtMs(s.total) }),
      ),
    ),
  );
}
