/**
 * The bodies of the webhook events a budget sends (DESIGN.md, "Budget alerts"): the payload is
 * built once, stored in the outbox, and delivered (and signed) exactly as stored.
 */
import type { PeriodBounds } from './period.js';
import type { Budget } from './types.js';
import { iso, usd } from './units.js';

/** `budget.threshold`: the spend of `budget` reached `threshold` × its limit in this period. */
export function thresholdEvent(
  budget: Budget,
  bounds: PeriodBounds,
  threshold: number,
  spentNanos: number,
  id: string,
  createdMs: number,
): string {
  return JSON.stringify(eventBody('budget.threshold', budget, bounds, threshold, spentNanos, id, createdMs));
}

/** `budget.test`: a threshold event's shape with threshold 0, sent on demand to check a receiver. */
export function testEvent(
  budget: Budget,
  bounds: PeriodBounds,
  spentNanos: number,
  id: string,
  createdMs: number,
): string {
  return JSON.stringify(eventBody('budget.test', budget, bounds, 0, spentNanos, id, createdMs));
}

function eventBody(
  type: 'budget.threshold' | 'budget.test',
  budget: Budget,
  bounds: PeriodBounds,
  threshold: number,
  spentNanos: number,
  id: string,
  createdMs: number,
) {
  return {
    id,
    type,
    budget: {
      id: budget.id,
      name: budget.name,
      scope: budget.scope,
      period: budget.period,
      timezone: budget.timezone,
      action: budget.action,
    },
    threshold,
    spent_usd: usd(spentNanos),
    limit_usd: usd(budget.limitNanos),
    period_start: iso(bounds.start),
    period_end: bounds.end === null ? null : iso(bounds.end),
    created_at: iso(createdMs),
  };
}
