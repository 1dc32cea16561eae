/** Everything one refresh reads from the API, fetched in parallel. */
import { AuthError, api } from './api.js';
import { burnQuery } from './burn.js';
import { TZ } from './time.js';

/** Calls read per refresh for the time split, the error classes and the latest-calls table. */
export const EVENTS_LIMIT = 500;

export async function load(range, now) {
  const from = new Date(now - range.ms).toISOString();
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
      const q = burnQuery(budget, now);
      if (!q) return;
      const result = await api('v1/usage/timeseries', q.params);
      burnSeries.set(budget.id, { ...q, result });
    }),
  );
  return { byModel, byUser, byFeature, byOutcome, cost, events, errors, budgets, burnSeries };
}
