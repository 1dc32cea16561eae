/**
 * Query-string schemas for the usage routes. Every value is checked here, against fixed lists
 * where it names something (dimensions, buckets, metrics), so nothing a client sends becomes
 * SQL text; the store binds the values as parameters.
 */
import { z } from 'zod';
import { decodeCursor } from '../store/cursor.js';
import { MAX_EVENTS_LIMIT, MAX_PAGE_BYTES } from '../store/events.js';
import { MAX_SUMMARY_GROUPS, MAX_SUMMARY_ROWS } from '../store/summary.js';
import {
  DEFAULT_TIMESERIES_SERIES,
  MAX_TIMESERIES_BUCKETS,
  MAX_TIMESERIES_POINTS,
  MAX_TIMESERIES_SERIES,
} from '../store/timeseries.js';
import {
  DIMENSIONS,
  type Dimension,
  GROUP_BY_KEYS,
  type GroupByKey,
  METRICS,
  TIME_BUCKETS,
  type UsageFilters,
} from '../store/types.js';
import { isValidTimeZone, utcMs, zonedInstant } from '../zones.js';

const MAX_TEXT = 256;

/** One value: a parameter given twice arrives as an array and is refused. */
const single = z
  .string({ error: (issue) => (Array.isArray(issue.input) ? 'give it once' : 'expected a string') })
  .max(MAX_TEXT, `longer than ${MAX_TEXT} characters`);

/** A filter: repeat the parameter to match any of several values. */
const filterValues = z
  .union([single, z.array(single).max(50, 'more than 50 values')], { error: 'expected one or more strings' })
  .transform((value) => (Array.isArray(value) ? value : [value]));

const list = <T extends string>(allowed: readonly T[]) =>
  single.transform((value, ctx): T[] => {
    const items = value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    const unknown = items.find((item) => !(allowed as readonly string[]).includes(item));
    if (unknown !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown value "${unknown}"; expected any of ${allowed.join(', ')}`,
      });
      return z.NEVER;
    }
    return [...new Set(items)] as T[];
  });

/** A whole number from 1 to `max`. */
const count = (max: number) =>
  single
    .regex(/^\d+$/, `expected an integer from 1 to ${max}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `expected an integer from 1 to ${max}`);

const oneOf = <const T extends readonly [string, ...string[]]>(allowed: T) =>
  z.enum(allowed, {
    error: (issue) => (Array.isArray(issue.input) ? 'give it once' : `expected one of ${allowed.join(', ')}`),
  });

/** A space stands for '+': an offset's unencoded '+' reaches us decoded as one. */
const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+\- ]\d{2}:\d{2})$/i;
const PLAIN_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_HELP =
  'expected an ISO 8601 date-time with a time zone (2025-03-10T09:00:00Z) or a date (2025-03-10)';

/** Year 0 (1 BC) is refused: Intl, which the zone arithmetic uses, numbers it 1 with an era. */
function validDate(year: number, month: number, day: number): boolean {
  return (
    year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= new Date(utcMs(year, month, 0)).getUTCDate()
  );
}

/** Epoch ms of an ISO 8601 instant with a zone, or of local midnight of a date in `tz`; null if neither. */
function parseDate(text: string, tz: string): number | null {
  const date = PLAIN_DATE.exec(text);
  if (date) {
    const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
    return validDate(year, month, day) ? zonedInstant(year, month, day, tz) : null;
  }
  const instant = ISO_INSTANT.exec(text);
  if (!instant) return null;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(instant[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!validDate(year, month, day) || hour > 23 || minute > 59 || second > 59) return null;
  const fraction = instant[7] ? Math.floor(Number(instant[7]) * 1000) : 0;
  const zone = instant[8]!.toUpperCase();
  let offsetMs = 0;
  if (zone !== 'Z') {
    const [h, m] = zone.slice(1).split(':').map(Number) as [number, number];
    if (h > 23 || m > 59) return null;
    offsetMs = (zone.startsWith('-') ? -1 : 1) * (h * 60 + m) * 60_000;
  }
  return utcMs(year, month - 1, day, hour, minute, second, fraction) - offsetMs;
}

const tz = single
  .refine(isValidTimeZone, { message: 'expected an IANA time zone such as UTC or Europe/Paris' })
  .optional();
const dateText = single
  .refine((value) => parseDate(value, 'UTC') !== null, { message: DATE_HELP })
  .optional();

const filterShape = Object.fromEntries(
  DIMENSIONS.map((dim) => [
    dim,
    filterValues
      .optional()
      .describe(`Only calls whose ${dim} is one of these values (repeat to give several).`),
  ]),
) as Record<Dimension, z.ZodOptional<typeof filterValues>>;

const rangeShape = {
  from: dateText.describe(
    'Start, inclusive: an ISO 8601 date-time with a zone, or a date (local midnight in `tz`).',
  ),
  to: dateText.describe(
    'End, exclusive: an ISO 8601 date-time with a zone, or a date (local midnight in `tz`).',
  ),
  tz: tz.describe('IANA time zone for plain dates and for day, week and month buckets. Default UTC.'),
};

interface Resolved {
  fromMs: number | undefined;
  toMs: number | undefined;
  tz: string;
  filters: UsageFilters;
}

/** Dates in `tz`, from < to, and the filters gathered into one object. */
function resolve<
  T extends { from?: string; to?: string; tz?: string } & Partial<Record<Dimension, string[]>>,
>(input: T, ctx: z.RefinementCtx): Resolved {
  const zone = input.tz ?? 'UTC';
  const fromMs = input.from === undefined ? undefined : (parseDate(input.from, zone) ?? undefined);
  const toMs = input.to === undefined ? undefined : (parseDate(input.to, zone) ?? undefined);
  if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) {
    ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be before `to`' });
  }
  const filters: UsageFilters = {};
  for (const dim of DIMENSIONS) if (input[dim]) filters[dim] = input[dim];
  return { fromMs, toMs, tz: zone, filters };
}

export const summaryQuery = z
  .strictObject({
    ...rangeShape,
    group_by: list<GroupByKey>(GROUP_BY_KEYS)
      .optional()
      .describe(`Comma-separated: ${GROUP_BY_KEYS.join(', ')}.`),
    limit: count(MAX_SUMMARY_GROUPS)
      .optional()
      .describe(
        `Most groups of the dimensions in \`group_by\`, 1 to ${MAX_SUMMARY_GROUPS} (the default). Past it, the groups with the largest cost are rows and the rest of each time bucket is one row with \`other: true\`. At most ${MAX_SUMMARY_ROWS} rows in all (time buckets × groups): with many buckets, fewer groups; with more buckets than that, a 400.`,
      ),
    ...filterShape,
  })
  .transform((input, ctx) => ({
    ...resolve(input, ctx),
    groupBy: input.group_by ?? [],
    limit: input.limit,
  }));

export const eventsQuery = z
  .strictObject({
    ...rangeShape,
    limit: count(MAX_EVENTS_LIMIT)
      .optional()
      .describe(
        `Events per page, 1 to ${MAX_EVENTS_LIMIT}. Default 100. A page also ends before ${MAX_PAGE_BYTES / 1024 / 1024} MiB of text (captured content), with a \`next_cursor\` to go on.`,
      ),
    cursor: single
      .refine((value) => decodeCursor(value) !== null, 'pass the `next_cursor` of a previous page')
      .optional()
      .describe('The `next_cursor` of the previous page.'),
    format: oneOf(['json', 'csv'] as const)
      .optional()
      .describe('`csv` streams every matching event (ignoring `limit` and `cursor`).'),
    ...filterShape,
  })
  .transform((input, ctx) => ({
    ...resolve(input, ctx),
    limit: input.limit,
    cursor: input.cursor,
    format: input.format ?? 'json',
  }));

export const timeseriesQuery = z
  .strictObject({
    ...rangeShape,
    interval: oneOf(TIME_BUCKETS)
      .optional()
      .describe(`Bucket: ${TIME_BUCKETS.join(', ')}. Default hour.`),
    metric: oneOf(METRICS)
      .optional()
      .describe(`What to plot: ${METRICS.join(', ')}. Default cost_usd.`),
    group_by: list<Dimension>(DIMENSIONS)
      .optional()
      .describe(`One series per value of these comma-separated dimensions: ${DIMENSIONS.join(', ')}.`),
    limit: count(MAX_TIMESERIES_SERIES)
      .optional()
      .describe(
        `Most series, 1 to ${MAX_TIMESERIES_SERIES}, default ${DEFAULT_TIMESERIES_SERIES}. Past it, the series largest in \`metric\` are shown and the rest are one series with \`other: true\`. At most ${MAX_TIMESERIES_POINTS} points (series × buckets): with many buckets, fewer series. A range of more than ${MAX_TIMESERIES_BUCKETS} buckets of \`interval\` is a 400.`,
      ),
    ...filterShape,
  })
  .transform((input, ctx) => ({
    ...resolve(input, ctx),
    interval: input.interval ?? 'hour',
    metric: input.metric ?? 'cost_usd',
    groupBy: input.group_by ?? [],
    limit: input.limit,
  }));
