/** The time ranges the page offers and the length of each bucket interval the API reports in. */

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const RANGES = {
  '1h': { ms: HOUR, interval: 'hour', label: 'last hour' },
  '24h': { ms: DAY, interval: 'hour', label: 'last 24 hours' },
  '7d': { ms: 7 * DAY, interval: 'hour', label: 'last 7 days' },
  '30d': { ms: 30 * DAY, interval: 'day', label: 'last 30 days' },
};

export const INTERVAL_MS = { hour: HOUR, day: DAY, week: 7 * DAY, month: 30 * DAY };

/** Buckets follow the viewer's calendar. */
export const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
