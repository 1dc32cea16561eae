/** Budgets and alerts as the API shows them: the current period's figures and a forecast. */
import { forecastNanos, periodBounds } from './period.js';
import type { AlertView, BudgetView } from './schema.js';
import type { AlertRow, Budget, BudgetLedger } from './types.js';
import { iso, usd } from './units.js';
import { spendFromUsage, type UsageTotals } from './usage.js';

/** The burn rate a forecast projects is the spend of the last six hours of the period. */
const RECENT_WINDOW_MS = 6 * 3_600_000;

interface Views {
  budget(budget: Budget): Promise<BudgetView>;
  alert(alert: AlertRow): AlertView;
}

export function createViews(options: {
  ledger: BudgetLedger;
  usage: UsageTotals | null | undefined;
  now: () => number;
}): Views {
  const { ledger, usage, now } = options;
  return {
    async budget(budget) {
      const t = now();
      const bounds = periodBounds(budget.period, budget.timezone, t);
      const spend = ledger.spend(budget.id, bounds.key);
      const reserved = ledger.reservedNanos(budget.id, bounds.key, t);
      let forecast: number | null = null;
      if (bounds.end !== null) {
        const windowStart = Math.max(bounds.start, t - RECENT_WINDOW_MS);
        const recent = usage
          ? (await spendFromUsage(usage, budget.scope, windowStart, t)).spentNanos
          : spend.spentNanos;
        forecast = forecastNanos(spend.spentNanos, recent, t - windowStart, bounds, t);
      }
      return {
        id: budget.id,
        name: budget.name,
        scope: budget.scope,
        period: budget.period,
        timezone: budget.timezone,
        limit_usd: usd(budget.limitNanos),
        thresholds: budget.thresholds,
        action: budget.action,
        webhook_url: budget.webhookUrl,
        has_webhook_secret: budget.webhookSecret !== null,
        spent_usd: usd(spend.spentNanos),
        reserved_usd: usd(reserved),
        remaining_usd: usd(Math.max(0, budget.limitNanos - spend.spentNanos)),
        requests: spend.requests,
        unpriced_requests: spend.unpricedRequests,
        period_start: iso(bounds.start),
        period_end: bounds.end === null ? null : iso(bounds.end),
        forecast_usd: forecast === null ? null : usd(forecast),
        created_at: iso(budget.createdMs),
        updated_at: iso(budget.updatedMs),
      };
    },
    alert(a) {
      return {
        id: a.id,
        budget_id: a.budgetId,
        period: a.periodKey,
        threshold: a.threshold,
        state: a.state,
        attempts: a.attempts,
        last_status: a.lastStatus,
        last_error: a.lastError,
        next_attempt_at: a.state === 'pending' ? iso(a.nextAttemptMs) : null,
        delivered_at: a.deliveredMs === null ? null : iso(a.deliveredMs),
        created_at: iso(a.createdMs),
        payload: JSON.parse(a.payload) as Record<string, unknown>,
      };
    },
  };
}
