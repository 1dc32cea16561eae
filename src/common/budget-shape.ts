/**
 * What a budget is made of, said once: the scope keys, periods, actions and alert states that
 * the input schema (src/budgets/schema.ts), the ledger's rows (budget-ledger.ts), the API's
 * documented views (src/server/budget-routes.ts, from the schema) and the dashboard derive from.
 */

/** The call attributes a budget can be scoped to; an absent key matches any call. */
export const SCOPE_KEYS = ['user', 'project', 'feature', 'model', 'provider'] as const;
export type ScopeKey = (typeof SCOPE_KEYS)[number];
export type BudgetScope = { [K in ScopeKey]?: string };

/** Day, week (ISO, Monday first) and month are calendar periods in the budget's time zone. */
export const PERIODS = ['day', 'week', 'month', 'total'] as const;
export type Period = (typeof PERIODS)[number];

/** `alert` only counts and notifies; `block` also refuses a call that would overspend. */
export const BUDGET_ACTIONS = ['alert', 'block'] as const;
export type BudgetAction = (typeof BUDGET_ACTIONS)[number];

/**
 * Where a fired threshold alert stands: `pending` in the outbox (delivery due or retried),
 * `delivered`, `failed` (given up), `no_webhook` (fired with nowhere to send it, kept for the
 * record), `cancelled` (its budget was deleted before delivery).
 */
export const ALERT_STATES = ['pending', 'delivered', 'failed', 'no_webhook', 'cancelled'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/**
 * The most a spend, a reservation or a sum of them is taken to be, in nano-dollars (2^62,
 * $4.6 billion): far above any limit (at most $1e9), and room left under 64-bit integers, so
 * adding one more call to a saturated spend never overflows.
 */
export const MAX_NANOS = 2 ** 62;

/** A figure in nano-dollars as the ledger stores it: an integer in [0, MAX_NANOS]; NaN is 0. */
export function clampNanos(nanos: number): number {
  if (Number.isNaN(nanos) || nanos <= 0) return 0;
  return nanos >= MAX_NANOS ? MAX_NANOS : Math.round(nanos);
}
