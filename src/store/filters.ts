/**
 * The WHERE clause every usage query shares: equality filters on report dimensions (several
 * values for one dimension match any of them) and a half-open time range. Summaries build it
 * per table (raw rows and rollups name their time column differently); events add a cursor.
 */
import { InvalidQueryError } from './errors.js';
import { DIMENSIONS, type Dimension, type UsageFilters } from './types.js';

export interface TimeRange {
  fromMs?: number | undefined;
  toMs?: number | undefined;
}

const isDimension = (key: string): key is Dimension => (DIMENSIONS as readonly string[]).includes(key);

/** The filters that select something, checked: an unknown key is a 400 naming it. */
export function filterEntries(filters: UsageFilters | undefined): Array<[Dimension, string[]]> {
  const entries: Array<[Dimension, string[]]> = [];
  for (const [key, value] of Object.entries(filters ?? {})) {
    if (value === undefined) continue;
    if (!isDimension(key)) throw new InvalidQueryError(key, `Unknown filter \`${key}\`.`);
    const values = (typeof value === 'string' ? [value] : [...value]).filter((v) => typeof v === 'string');
    if (values.length > 0) entries.push([key, values]);
  }
  return entries;
}

/** Conditions and their parameters; `extra` are ANDed after them (an events cursor). */
export function whereClause(
  timeColumn: string,
  range: TimeRange,
  filters: Array<[Dimension, string[]]>,
  extra: { conditions: string[]; params: Array<string | number> } = { conditions: [], params: [] },
): { sql: string; params: Array<string | number> } {
  const conditions: string[] = [];
  const params: Array<string | number> = [];
  for (const [dim, values] of filters) {
    conditions.push(values.length === 1 ? `${dim} = ?` : `${dim} IN (${values.map(() => '?').join(', ')})`);
    params.push(...values);
  }
  if (range.fromMs !== undefined) {
    conditions.push(`${timeColumn} >= ?`);
    params.push(range.fromMs);
  }
  if (range.toMs !== undefined) {
    conditions.push(`${timeColumn} < ?`);
    params.push(range.toMs);
  }
  conditions.push(...extra.conditions);
  params.push(...extra.params);
  return { sql: conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '', params };
}
