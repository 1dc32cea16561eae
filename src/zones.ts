/**
 * Wall-clock time in IANA time zones, computed with Intl (SQLite and Date know no zones): the
 * primitives report buckets (src/common/buckets.ts), budget periods (src/budgets/period.ts) and
 * API date parsing (src/server/query.ts) share.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let format = formatters.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, format);
  }
  return format;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export function wallTime(ms: number, tz: string): WallTime {
  const wall: WallTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(tz).formatToParts(ms)) {
    if (part.type in wall) wall[part.type as keyof WallTime] = Number(part.value);
  }
  return wall;
}

/**
 * Date.UTC, except that years 0-99 are those years: Date.UTC reads them as 1900-1999, so a
 * query `from=0050-01-01` would silently mean 1950.
 */
export function utcMs(
  year: number,
  monthIndex: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  ms = 0,
): number {
  if (year < 0 || year > 99) return Date.UTC(year, monthIndex, day, hour, minute, second, ms);
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime();
}

/** Local time minus UTC at `ms`, in ms. */
function offsetAt(ms: number, tz: string): number {
  const w = wallTime(ms, tz);
  return utcMs(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000;
}

/** The instant the local wall clock in `tz` reads the given date and hour (month 1..12). */
export function zonedInstant(year: number, month: number, day: number, tz: string, hour = 0): number {
  const wall = utcMs(year, month - 1, day, hour);
  const first = offsetAt(wall, tz);
  let instant = wall - first;
  const second = offsetAt(instant, tz);
  if (second !== first) instant = wall - second;
  return instant;
}
