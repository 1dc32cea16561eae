/** The budgets panel: one card per budget (name, scope, spend against limit, forecast, burn-down). */
import { drawBurn } from './burn.js';
import { dropCharts } from './charts.js';
import { $, empty, h } from './dom.js';
import { fmtDate, fmtPct, fmtUsd } from './format.js';
import { describeScope } from './scope.js';

/**
 * `budgets` is null when the server has no budget routes. Cards are kept across refreshes, so
 * their charts are updated in place rather than redrawn.
 */
export function renderBudgets(budgets, seriesById, now) {
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
    fillBudget(card, budget);
  }
  target.replaceChildren(...ordered);
  for (const card of ordered) {
    const budget = budgets.find((b) => b.id === card.dataset.id);
    drawBurn(card.querySelector('.burn'), budget, seriesById.get(budget.id), now);
  }
}

function fillBudget(card, budget) {
  const ratio = budget.limit_usd > 0 ? budget.spent_usd / budget.limit_usd : 0;
  const level = ratio >= 1 ? 'over' : ratio >= 0.8 ? 'warn' : 'ok';
  card.dataset.spent = String(budget.spent_usd);
  card.dataset.limit = String(budget.limit_usd);
  card.dataset.forecast = budget.forecast_usd === null ? '' : String(budget.forecast_usd);
  card
    .querySelector('.budget-head')
    .replaceChildren(
      h('span', { class: 'budget-name', text: budget.name }),
      h('span', { class: 'tag', text: budget.period === 'total' ? 'total' : `per ${budget.period}` }),
      h('span', { class: `tag action-${budget.action}`, text: budget.action }),
      h('span', { class: 'scope mono', text: describeScope(budget.scope) }),
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
