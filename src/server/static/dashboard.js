/**
 * llm-meter's built-in dashboard: reads the JSON API of the server that served it and draws
 * with uPlot. Plain script, no build step. Every value from the API reaches the page through
 * textContent, never as markup (user, feature and model names are caller-controlled).
 */
(() => {
  const TOKEN_KEY = 'llm-meter.token';
  const REFRESH_MS = 5000;
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  const RANGES = {
    '1h': { ms: HOUR, interval: 'hour', label: 'last hour' },
    '24h': { ms: DAY, interval: 'hour', label: 'last 24 hours' },
    '7d': { ms: 7 * DAY, interval: 'hour', label: 'last 7 days' },
    '30d': { ms: 30 * DAY, interval: 'day', label: 'last 30 days' },
  };
  const INTERVAL_MS = { hour: HOUR, day: DAY, week: 7 * DAY, month: 30 * DAY };
  const PALETTE = ['#4f6bed', '#e8833a', '#22a06b', '#d6455d', '#8f63d2', '#c79a16', '#1f9fbf', '#8a96a8'];
  const TOP_MODELS = 7;
  const EVENTS_LIMIT = 500;
  const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    range: '24h',
    inFlight: false,
    needsToken: false,
    charts: new Map(),
  };

  // ---- formatting ---------------------------------------------------------------------------

  const intFormat = new Intl.NumberFormat('en-US');
  const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

  function fmtUsd(value) {
    if (value === null || value === undefined) return '—';
    const abs = Math.abs(value);
    if (abs === 0) return '$0.00';
    if (abs >= 1000) return `$${intFormat.format(Math.round(value))}`;
    if (abs >= 1) return `$${value.toFixed(2)}`;
    if (abs >= 0.01) return `$${value.toFixed(4)}`;
    // Three significant digits, never in exponent notation.
    return `$${value.toFixed(Math.min(12, 2 - Math.floor(Math.log10(abs))))}`;
  }
  const fmtInt = (value) => (value === null || value === undefined ? '—' : intFormat.format(value));
  const fmtCompact = (value) =>
    value === null || value === undefined
      ? '—'
      : value < 10_000
        ? fmtInt(value)
        : compactFormat.format(value);
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  }
  const fmtPct = (ratio) => `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)}%`;
  const fmtTime = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
  const fmtDate = (ms) =>
    new Date(ms).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const nameOf = (value) =>
    value === null || value === undefined || value === '' ? '(none)' : String(value);
  /** A summary row's name: its `key`, or how many groups the row past the API's limit adds up. */
  const groupName = (row, key) => (row.other ? `${fmtInt(row.other_groups)} others` : nameOf(row[key]));

  // ---- DOM ----------------------------------------------------------------------------------

  const $ = (selector) => document.querySelector(selector);

  /** An element with text (never HTML), classes and children. */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = value;
        else if (key === 'title') node.title = value;
        else if (key === 'width') node.style.width = value;
        else if (key === 'color') node.style.background = value;
        else node.setAttribute(key, value);
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const empty = (text) => h('p', { class: 'empty', text });

  function setStatus(kind, text) {
    const status = $('#status');
    status.className = `status ${kind}`;
    status.textContent = text;
  }

  function setNotice(text) {
    const notice = $('#notice');
    notice.hidden = !text;
    notice.textContent = text || '';
  }

  // ---- API ----------------------------------------------------------------------------------

  class AuthError extends Error {}

  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value === undefined || value === null) continue;
      for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
    }
    const headers = { accept: 'application/json' };
    if (state.token) headers.authorization = `Bearer ${state.token}`;
    const qs = query.toString();
    const res = await fetch(qs ? `${path}?${qs}` : path, {
      headers,
      cache: 'no-store',
      signal: AbortSignal.timeout(20_000),
    });
    if (res.status === 401) throw new AuthError('unauthorized');
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try {
        message = (await res.json()).error.message || message;
      } catch {}
      throw new Error(`${path}: ${message}`);
    }
    return res.json();
  }

  // ---- charts -------------------------------------------------------------------------------

  /** A hover box listing each series' value at the cursor. */
  function tooltipPlugin(describe) {
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

  const axisStyle = {
    stroke: '#667085',
    grid: { stroke: '#eef0f4', width: 1 },
    ticks: { stroke: '#e4e7ec', width: 1 },
    font: '11px system-ui, -apple-system, "Segoe UI", sans-serif',
  };
  /** Axis labels: as many digits as the ticks need, no trailing zeros. */
  const axisUsd = (v) => (v === 0 ? '$0' : Math.abs(v) >= 1000 ? fmtUsd(v) : `$${Number(v.toPrecision(3))}`);
  const usdAxis = {
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
  function upsertChart(key, container, shape, makeOptions, data) {
    let entry = state.charts.get(key);
    if (entry && (entry.shape !== shape || !container.contains(entry.plot.root))) {
      entry.plot.destroy();
      entry.observer.disconnect();
      state.charts.delete(key);
      entry = undefined;
    }
    if (!entry) {
      const width = Math.max(240, container.clientWidth);
      const plot = new uPlot({ ...makeOptions(), width }, data, container);
      const observer = new ResizeObserver(() => {
        const w = Math.max(240, container.clientWidth);
        if (w !== plot.width) plot.setSize({ width: w, height: plot.height });
      });
      observer.observe(container);
      entry = { plot, observer, shape };
      state.charts.set(key, entry);
    } else {
      entry.plot.setData(data);
    }
    return entry.plot;
  }

  function dropCharts(keep) {
    for (const [key, entry] of state.charts) {
      if (keep(key)) continue;
      entry.plot.destroy();
      entry.observer.disconnect();
      state.charts.delete(key);
    }
  }

  // ---- panels -------------------------------------------------------------------------------

  function renderKpis(totals, rangeLabel) {
    /** `value` is a text, or [main, secondary] where the secondary part is set smaller. */
    const set = (id, value, sub, data) => {
      const tile = $(`#${id}`);
      const [main, second] = Array.isArray(value) ? value : [value, null];
      tile
        .querySelector('.value')
        .replaceChildren(main, second === null ? '' : h('small', { text: ` / ${second}` }));
      tile.querySelector('.sub').textContent = sub;
      for (const [k, v] of Object.entries(data)) tile.dataset[k] = v === null ? '' : String(v);
    };
    const perCall =
      totals.requests > 0 && totals.cost_usd !== null ? totals.cost_usd / totals.requests : null;
    set(
      'kpi-cost',
      fmtUsd(totals.cost_usd),
      totals.unpriced_requests > 0
        ? `${fmtInt(totals.unpriced_requests)} unpriced: a lower bound`
        : perCall === null
          ? rangeLabel
          : `${fmtUsd(perCall)} per call`,
      { value: totals.cost_usd },
    );
    set('kpi-requests', fmtInt(totals.requests), rangeLabel, { value: totals.requests });
    set(
      'kpi-errors',
      fmtInt(totals.errors),
      totals.requests > 0 ? `${fmtPct(totals.errors / totals.requests)} of requests` : '',
      { value: totals.errors },
    );
    set(
      'kpi-tokens',
      [fmtCompact(totals.input_tokens), fmtCompact(totals.output_tokens)],
      totals.cached_input_tokens > 0
        ? `${fmtCompact(totals.cached_input_tokens)} cached input`
        : 'input / output',
      { input: totals.input_tokens, output: totals.output_tokens },
    );
    set('kpi-latency', [fmtMs(totals.latency_p50_ms), fmtMs(totals.latency_p95_ms)], 'whole call', {
      p50: totals.latency_p50_ms,
      p95: totals.latency_p95_ms,
    });
    set('kpi-ttft', [fmtMs(totals.ttft_p50_ms), fmtMs(totals.ttft_p95_ms)], 'streamed calls', {
      p50: totals.ttft_p50_ms,
      p95: totals.ttft_p95_ms,
    });
  }

  function renderCost(result, range) {
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
            paths: uPlot.paths.bars({ size: [0.82, 56], gap: 1 }),
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

  function renderBarList(target, rows, key, color) {
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

  const OUTCOME_ORDER = ['ok', 'error', 'cancelled', 'blocked'];

  function renderErrors(byOutcome, errorEvents) {
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
    const hint = $('#errors-hint');
    hint.textContent =
      errorEvents.next_cursor === null ? 'by error.type' : `latest ${fmtInt(EVENTS_LIMIT)} errors`;
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

  function renderLatency(byModel) {
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

  const PHASES = [
    ['queue', 'queue_ms', 'queue_source'],
    ['prefill', 'prefill_ms', 'prefill_source'],
    ['generation', 'generation_ms', 'generation_source'],
  ];

  function renderPhases(page) {
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
      `average per call, ${page.next_cursor === null ? 'successful calls in range' : `latest ${fmtInt(EVENTS_LIMIT)} calls`}`;
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

  const SCOPE_KEYS = ['user', 'project', 'feature', 'model', 'provider'];

  function budgetSeriesQuery(budget, now) {
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
    };
    for (const key of SCOPE_KEYS) if (budget.scope?.[key] !== undefined) params[key] = budget.scope[key];
    return { params, start, end, interval };
  }

  function renderBudgets(budgets, seriesById, now) {
    const target = $('#budgets');
    if (budgets === null) {
      dropCharts((key) => !key.startsWith('budget:'));
      target.replaceChildren(empty('Budgets are not available on this server.'));
      return;
    }
    if (budgets.length === 0) {
      dropCharts((key) => !key.startsWith('budget:'));
      target.replaceChildren(
        empty('No budgets yet. Create one with POST /v1/budgets or `llm-meter budgets create`.'),
      );
      return;
    }
    const ids = new Set(budgets.map((b) => `budget:${b.id}`));
    dropCharts((key) => !key.startsWith('budget:') || ids.has(key));
    if (target.querySelector(':scope > .empty')) target.replaceChildren();

    const cards = new Map([...target.children].map((card) => [card.dataset.id, card]));
    const ordered = [];
    for (const budget of budgets) {
      let card = cards.get(budget.id);
      if (!card) {
        card = h('div', { class: 'budget', 'data-id': budget.id });
        card.append(
          h('div', { class: 'budget-head' }),
          h('div', { class: 'budget-figures' }),
          h('div', { class: 'burn' }),
        );
      }
      ordered.push(card);
      fillBudget(card, budget, seriesById.get(budget.id), now);
    }
    target.replaceChildren(...ordered);
    for (const card of ordered) {
      const budget = budgets.find((b) => b.id === card.dataset.id);
      drawBurn(card.querySelector('.burn'), budget, seriesById.get(budget.id), now);
    }
  }

  function fillBudget(card, budget, _series, _now) {
    const ratio = budget.limit_usd > 0 ? budget.spent_usd / budget.limit_usd : 0;
    const level = ratio >= 1 ? 'over' : ratio >= 0.8 ? 'warn' : 'ok';
    const scope = SCOPE_KEYS.filter((k) => budget.scope?.[k] !== undefined).map(
      (k) => `${k}=${budget.scope[k]}`,
    );
    card.dataset.spent = String(budget.spent_usd);
    card.dataset.limit = String(budget.limit_usd);
    card.dataset.forecast = budget.forecast_usd === null ? '' : String(budget.forecast_usd);
    card
      .querySelector('.budget-head')
      .replaceChildren(
        h('span', { class: 'budget-name', text: budget.name }),
        h('span', { class: 'tag', text: budget.period === 'total' ? 'total' : `per ${budget.period}` }),
        h('span', { class: `tag action-${budget.action}`, text: budget.action }),
        h('span', { class: 'scope mono', text: scope.length ? scope.join(' · ') : 'all calls' }),
      );
    const forecastOver = budget.forecast_usd !== null && budget.forecast_usd > budget.limit_usd;
    card.querySelector('.budget-figures').replaceChildren(
      h(
        'div',
        { class: 'spend' },
        h('span', { class: 'spent', text: fmtUsd(budget.spent_usd) }),
        h('span', { class: 'of', text: ` of ${fmtUsd(budget.limit_usd)}` }),
        h('span', { class: `pct ${level}`, text: fmtPct(ratio) }),
      ),
      h('div', { class: 'progress' }, h('span', { class: level, width: `${Math.min(100, ratio * 100)}%` })),
      h(
        'div',
        { class: 'budget-notes' },
        h('span', { text: `${fmtUsd(budget.remaining_usd)} left` }),
        budget.forecast_usd === null
          ? h('span', { text: 'no period end: no forecast' })
          : h('span', {
              class: forecastOver ? 'forecast over' : 'forecast',
              text: `forecast ${fmtUsd(budget.forecast_usd)} by ${fmtDate(Date.parse(budget.period_end))}`,
            }),
      ),
    );
  }

  /** Burn-down: spend so far (a running total), the forecast to the period end, the limit. */
  function drawBurn(container, budget, series, now) {
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
            paths: uPlot.paths.stepped({ align: 1 }),
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

  function renderCalls(page) {
    const rows = page.events.slice(0, 15);
    $('#calls-hint').textContent = rows.length ? `newest first, ${rows.length} shown` : '';
    const body = $('#calls tbody');
    if (rows.length === 0) {
      body.replaceChildren(h('tr', null, h('td', { colspan: '10', class: 'empty', text: 'No calls yet.' })));
      return;
    }
    const split = (e) =>
      PHASES.map(([, field, source]) =>
        e[field] === null || e[field] === undefined
          ? '—'
          : `${Math.round(e[field])}${e[source] ? e[source][0] : ''}`,
      ).join(' / ');
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

  // ---- refresh loop -------------------------------------------------------------------------

  async function refresh() {
    if (state.inFlight) return;
    state.inFlight = true;
    const range = RANGES[state.range];
    const now = Date.now();
    const from = new Date(now - range.ms).toISOString();
    try {
      const [byModel, byUser, byFeature, byOutcome, cost, events, errors, budgets] = await Promise.all([
        api('v1/usage/summary', { from, group_by: 'model' }),
        api('v1/usage/summary', { from, group_by: 'user' }),
        api('v1/usage/summary', { from, group_by: 'feature' }),
        api('v1/usage/summary', { from, group_by: 'outcome' }),
        api('v1/usage/timeseries', {
          from,
          interval: range.interval,
          metric: 'cost_usd',
          group_by: 'model',
          tz: TZ,
        }),
        api('v1/usage/events', { from, limit: EVENTS_LIMIT }),
        api('v1/usage/events', { from, limit: EVENTS_LIMIT, outcome: 'error' }),
        // A server without a database has no budget routes (404): the panel says so.
        api('v1/budgets').then(
          (body) => body.budgets,
          (error) => {
            if (error instanceof AuthError) throw error;
            return null;
          },
        ),
      ]);
      const burnSeries = new Map();
      await Promise.all(
        (budgets || []).map(async (budget) => {
          const q = budgetSeriesQuery(budget, now);
          if (!q) return;
          const result = await api('v1/usage/timeseries', q.params);
          burnSeries.set(budget.id, { ...q, result });
        }),
      );

      state.needsToken = false;
      setNotice('');
      document.body.classList.remove('needs-token');
      renderKpis(byModel.totals, range.label);
      renderCost(cost, range);
      renderBarList($('#top-users'), byUser.rows, 'user', PALETTE[0]);
      renderBarList($('#top-features'), byFeature.rows, 'feature', PALETTE[2]);
      renderErrors(byOutcome, errors);
      renderLatency(byModel);
      renderPhases(events);
      renderBudgets(budgets, burnSeries, now);
      renderCalls(events);
      document.body.dataset.updated = String(now);
      setStatus('live', `Live · updated ${new Date(now).toLocaleTimeString([], { hour12: false })}`);
    } catch (error) {
      if (error instanceof AuthError) {
        state.needsToken = true;
        document.body.classList.add('needs-token');
        setNotice(
          state.token
            ? 'The API token was refused. Enter the token the server was started with.'
            : 'This server needs an API token: enter it above. It is kept in this browser tab only (sessionStorage).',
        );
        setStatus('paused', 'Token needed');
      } else {
        setStatus('error', `Update failed: ${error.message}`);
      }
    } finally {
      state.inFlight = false;
    }
  }

  function tick() {
    if (!document.hidden && !state.needsToken) void refresh();
  }

  function start() {
    const tokenInput = $('#token');
    const showToken = () => {
      tokenInput.placeholder = state.token ? 'API token (saved)' : 'API token';
    };
    showToken();
    $('#token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = tokenInput.value.trim();
      if (!value) return;
      state.token = value;
      sessionStorage.setItem(TOKEN_KEY, value);
      tokenInput.value = '';
      state.needsToken = false;
      showToken();
      void refresh();
    });
    $('#token-clear').addEventListener('click', () => {
      state.token = '';
      sessionStorage.removeItem(TOKEN_KEY);
      showToken();
      void refresh();
    });
    $('#range').addEventListener('change', (event) => {
      state.range = event.target.value;
      void refresh();
    });
    document.addEventListener('visibilitychange', tick);
    setInterval(tick, REFRESH_MS);
    void refresh();
  }

  start();
})();
