/**
 * Budget periods, computed from the clock and never stored: a budget whose period ended starts
 * the next one from zero without a job. Day, week (ISO, Monday first) and month boundaries are
 * local midnights in the budget's IANA time zone, so they move with daylight saving time.
 */
import { isValidTimeZone, wallTime, zonedInstant } from '../zones.js';

export type Period = 'day' | 'week' | 'month' | 'total';

export interface PeriodBounds {
  /** Epoch ms, inclusive. 0 for `total`. */
  start: number;
  /** Epoch ms, exclusive. null for `total`. */
  end: number | null;
  /** A stable key for this period (its start as ISO date in the zone, or 'total'). */
  key: string;
}

/** Throws a RangeError naming the zone when it is not a valid IANA time zone. */
export function checkTimeZone(timeZone: string): void {
  if (!isValidTimeZone(timeZone)) {
    throw new RangeError(`Expected \`timezone\` to be an IANA time zone, got "${timeZone}".`);
  }
}

function isoDate(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** Calendar arithmetic on a local date, normalised through UTC (no zone involved). */
function addDays(year: number, month: number, day: number, days: number): [number, number, number] {
  const d = new Date(Date.UTC(year, month - 1, day + days));
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
}

export function periodBounds(period: Period, timeZone: string, nowMs: number): PeriodBounds {
  if (period === 'total') return { start: 0, end: null, key: 'total' };
  const w = wallTime(nowMs, timeZone);
  let start: [number, number, number];
  let next: [number, number, number];
  if (period === 'day') {
    start = [w.year, w.month, w.day];
    next = addDays(w.year, w.month, w.day, 1);
  } else if (period === 'week') {
    const weekday = new Date(Date.UTC(w.year, w.month - 1, w.day)).getUTCDay(); // 0 = Sunday
    const sinceMonday = (weekday + 6) % 7;
    start = addDays(w.year, w.month, w.day, -sinceMonday);
    next = addDays(...start, 7);
  } else {
    start = [w.year, w.month, 1];
    next = w.month === 12 ? [w.year + 1, 1, 1] : [w.year, w.month + 1, 1];
  }
  return {
    start: zonedInstant(...start, timeZone),
    end: zonedInstant(...next, timeZone),
    key: `${period}:${isoDate(...start)}`,
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
