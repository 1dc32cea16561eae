/**
 * Calendar buckets in an IANA time zone, computed in JS with Intl (SQLite knows no zones): the
 * store's report buckets and the budgets' periods are the same local days, weeks and months.
 *
 * Reports are built from hours (rollup rows are hourly), and each hour is labelled with the
 * local day, ISO week or month its first instant falls in. Day boundaries are therefore exact
 * across DST changes (a local day is 23 or 25 hours) in every zone whose UTC offset is a whole
 * number of hours; in the few zones with a :30 or :45 offset the boundary is taken at the UTC
 * hour that contains local midnight. `hour` buckets are UTC hours.
 */
import { utcMs, wallTime, zonedInstant } from '../zones.js';

/** Calendar buckets; day, week (ISO, starting Monday) and month follow a time zone. */
export const TIME_BUCKETS = ['hour', 'day', 'week', 'month'] as const;
export type TimeBucket = (typeof TIME_BUCKETS)[number];

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function dateLabel(utcMidnight: number): string {
  const d = new Date(utcMidnight);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/**
 * Instants reports can label: years 1 to 9999 (labels have four-digit years). The store refuses
 * calls outside 1970..9999, but rows an older version wrote may lie anywhere: they are labelled
 * as the first or last hour of that range rather than failing every report that reads them.
 */
const FIRST_LABEL_MS = utcMs(1, 0, 1);
const LAST_LABEL_MS = Date.UTC(9999, 11, 31, 23);

/** Label of the bucket that contains the instant `ms` (an hour start, in reports). */
export function bucketLabel(instantMs: number, unit: TimeBucket, tz: string): string {
  const ms = Math.min(LAST_LABEL_MS, Math.max(FIRST_LABEL_MS, instantMs));
  if (unit === 'hour') return new Date(Math.floor(ms / HOUR_MS) * HOUR_MS).toISOString();
  const w = wallTime(ms, tz);
  if (unit === 'month') return `${pad(w.year, 4)}-${pad(w.month)}`;
  const localDate = Date.UTC(w.year, w.month - 1, w.day);
  if (unit === 'day') return dateLabel(localDate);
  const mondayBased = (new Date(localDate).getUTCDay() + 6) % 7;
  return dateLabel(localDate - mondayBased * DAY_MS);
}

/** Start instant of the bucket a label names. */
export function bucketStart(label: string, unit: TimeBucket, tz: string): number {
  if (unit === 'hour') return Date.parse(label);
  const [year = 0, month = 1, day = 1] = label.split('-').map(Number);
  return zonedInstant(year, month, day, tz);
}

/** The label of the bucket after `label`. */
export function nextBucketLabel(label: string, unit: TimeBucket): string {
  if (unit === 'hour') return new Date(Date.parse(label) + HOUR_MS).toISOString();
  const [year = 0, month = 1, day = 1] = label.split('-').map(Number);
  if (unit === 'month') {
    const next = new Date(Date.UTC(year, month, 1));
    return `${pad(next.getUTCFullYear(), 4)}-${pad(next.getUTCMonth() + 1)}`;
  }
  return dateLabel(Date.UTC(year, month - 1, day) + (unit === 'week' ? 7 : 1) * DAY_MS);
}

/** Labels for many hours, computing each hour once. */
export function createBucketLabeler(unit: TimeBucket, tz: string): (hourMs: number) => string {
  const cache = new Map<number, string>();
  return (hourMs) => {
    let label = cache.get(hourMs);
    if (label === undefined) {
      label = bucketLabel(hourMs, unit, tz);
      cache.set(hourMs, label);
    }
    return label;
  };
}
