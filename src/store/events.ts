/**
 * Events (raw calls) newest first, by keyset pagination on (time_ms, seq): every filter has an
 * index on (column, time_ms), and seq is the rowid, so each index is already in this order.
 */
import { decodeCursor } from './cursor.js';
import { InvalidQueryError } from './errors.js';
import { filterEntries, whereClause } from './filters.js';
import type { EventsQuery } from './types.js';

export const DEFAULT_EVENTS_LIMIT = 100;
export const MAX_EVENTS_LIMIT = 1000;
/**
 * Text a page holds at most (captured prompts and completions mostly: with captureContent one
 * call can carry megabytes, and a thousand of them would be gigabytes). A page stops before
 * the event that would pass it, though it always holds at least one; `next_cursor` goes on
 * from there.
 */
export const MAX_PAGE_BYTES = 16 * 1024 * 1024;

/** About what a stored row weighs in a response: its text (UTF-16 units), and a little per row. */
export function rowWeight(row: Record<string, unknown>): number {
  let weight = 512;
  for (const key in row) {
    const value = row[key];
    if (typeof value === 'string') weight += value.length;
  }
  return weight;
}

export function eventsSql(query: EventsQuery): {
  sql: string;
  params: Array<string | number>;
  limit: number;
} {
  const limit = query.limit ?? DEFAULT_EVENTS_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENTS_LIMIT) {
    throw new InvalidQueryError(
      'limit',
      `Expected \`limit\` to be an integer from 1 to ${MAX_EVENTS_LIMIT}.`,
    );
  }
  const cursor = { conditions: [] as string[], params: [] as number[] };
  if (query.cursor !== undefined) {
    const position = decodeCursor(query.cursor);
    if (!position)
      throw new InvalidQueryError('cursor', 'Invalid `cursor`: pass the `next_cursor` of a page.');
    // Written so the index serves the range on time_ms; the seq test only splits equal times.
    cursor.conditions.push('time_ms <= ?', '(time_ms < ? OR seq < ?)');
    cursor.params.push(position.timeMs, position.timeMs, position.seq);
  }
  const { sql: where, params } = whereClause('time_ms', query, filterEntries(query.filters), cursor);
  return {
    sql: `SELECT * FROM usage${where} ORDER BY time_ms DESC, seq DESC LIMIT ?`,
    params: [...params, limit + 1],
    limit,
  };
}
