/**
 * The calendar buckets of src/common/buckets.ts as a SQL function, so that a report can group
 * rollup rows by local day in the query itself.
 */
import { bucketLabel, bucketStart, type TimeBucket } from '../common/buckets.js';
import type { SqliteDatabase } from './connection.js';

const MAX_CACHED_STARTS = 100_000;

/**
 * `llm_meter_bucket_start(ms, unit, tz)`: the start instant of the calendar bucket (`day`,
 * `week`, `month` in zone `tz`) that contains the instant `ms`. Lets a report group rollup rows
 * by local day in SQL, so a month of hourly rows per user comes back as one row per user and
 * day rather than one per user and hour. Cached per (unit, zone, instant): rollup rows repeat
 * the same few hundred hours.
 */
export function registerBucketFunctions(db: SqliteDatabase): void {
  const cache = new Map<string, number>();
  db.function(
    'llm_meter_bucket_start',
    { deterministic: true },
    (ms: unknown, unit: unknown, tz: unknown) => {
      const at = typeof ms === 'bigint' ? Number(ms) : (ms as number);
      const key = `${unit as string}|${tz as string}|${at}`;
      let start = cache.get(key);
      if (start === undefined) {
        start = bucketStart(
          bucketLabel(at, unit as TimeBucket, tz as string),
          unit as TimeBucket,
          tz as string,
        );
        if (cache.size >= MAX_CACHED_STARTS) cache.clear();
        cache.set(key, start);
      }
      return start;
    },
  );
}
