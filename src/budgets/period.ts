/**
 * Budget periods, computed from the clock and never stored: a budget whose period ended starts
 * the next one from zero without a job. Day, week (ISO, Monday first) and month boundaries are
 * local midnights in the budget's IANA time zone, so they move with daylight saving time.
 */

import { bucketLabel, bucketStart, nextBucketLabel } from '../common/buckets.js';
import type { Period } from '../common/budget-shape.js';

export type { Period };

export interface PeriodBounds {
  /** Epoch ms, inclusive. 0 for `total`. */
  start: number;
  /** Epoch ms, exclusive. null for `total`. */
  end: number | null;
  /** A stable key for this period (its start as ISO date in the zone, or 'total'). */
  key: string;
}

export function periodBounds(period: Period, timeZone: string, nowMs: number): PeriodBounds {
  if (period === 'total') return { start: 0, end: null, key: 'total' };
  // A budget period is a report bucket: the local day, ISO week or month that holds now.
  const label = bucketLabel(nowMs, period, timeZone);
  return {
    start: bucketStart(label, period, timeZone),
    end: bucketStart(nextBucketLabel(label, period), period, timeZone),
    // Stored in budget_spend: the period's first local date, also for months.
    key: `${period}:${period === 'month' ? `${label}-01` : label}`,
  };
}

/**
 * Spend projected to the end of the period from the recent burn rate: spend in the recent
 * window divided by the window's length, times the time left. null for `total` periods.
 */
export function forecastNanos(
  spentNanos: number,
  recentNanos: number,
  recentWindowMs: number,
  bounds: PeriodBounds,
  nowMs: number,
): number | null {
  if (bounds.end === null) return null;
  const remaining = Math.max(0, bounds.end - nowMs);
  if (recentWindowMs <= 0) return spentNanos;
  return Math.round(spentNanos + (recentNanos / recentWindowMs) * remaining);
}
