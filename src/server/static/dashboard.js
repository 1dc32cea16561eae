/**
 * llm-meter's built-in dashboard: reads the JSON API of the server that served it and draws
 * with uPlot. ES modules served as they are, no build step; this entry keeps the controls and
 * the refresh loop, and each panel is drawn by its own module under ./js.
 */
import { AuthError, forgetToken, hasToken, setToken } from './js/api.js';
import { renderBarList } from './js/bars.js';
import { renderBudgets } from './js/budgets.js';
import { renderCalls } from './js/calls.js';
import { PALETTE } from './js/charts.js';
import { renderCost } from './js/cost.js';
import { $, setNotice, setStatus } from './js/dom.js';
import { renderKpis } from './js/kpis.js';
import { renderLatency } from './js/latency.js';
import { EVENTS_LIMIT, load } from './js/load.js';
import { renderOutcomes } from './js/outcomes.js';
import { renderPhases } from './js/phases.js';
import { RANGES } from './js/time.js';

const REFRESH_MS = 5000;

const state = { range: '24h', inFlight: false, needsToken: false };

async function refresh() {
  if (state.inFlight) return;
  state.inFlight = true;
  const range = RANGES[state.range];
  const now = Date.now();
  try {
    const data = await load(range, now);
    state.needsToken = false;
    setNotice('');
    document.body.classList.remove('needs-token');
    renderKpis(data.byModel.totals, range.label);
    renderCost(data.cost, range);
    renderBarList($('#top-users'), data.byUser.rows, 'user', PALETTE[0]);
    renderBarList($('#top-features'), data.byFeature.rows, 'feature', PALETTE[2]);
    renderOutcomes(data.byOutcome, data.errors, EVENTS_LIMIT);
    renderLatency(data.byModel);
    renderPhases(data.events, EVENTS_LIMIT);
    renderBudgets(data.budgets, data.burnSeries, now);
    renderCalls(data.events);
    document.body.dataset.updated = String(now);
    setStatus('live', `Live · updated ${new Date(now).toLocaleTimeString([], { hour12: false })}`);
  } catch (error) {
    if (error instanceof AuthError) {
      state.needsToken = true;
      document.body.classList.add('needs-token');
      setNotice(
        hasToken()
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
    tokenInput.placeholder = hasToken() ? 'API token (saved)' : 'API token';
  };
  showToken();
  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) return;
    setToken(value);
    tokenInput.value = '';
    state.needsToken = false;
    showToken();
    void refresh();
  });
  $('#token-clear').addEventListener('click', () => {
    forgetToken();
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
