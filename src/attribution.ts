import { AsyncLocalStorage } from 'node:async_hooks';
import type { Attribution } from './record.js';

/** What `meter.run()` takes: the three standard keys plus free-form string tags. */
export interface AttributionInput {
  user?: string;
  project?: string;
  feature?: string;
  [tag: string]: string | undefined;
}

/**
 * Tags withRetry puts on every attempt of one call: the group they share and the attempt's
 * number. The meter links each attempt's span to the previous attempt's.
 */
export const RETRY_GROUP_TAG = 'retry_group';
export const RETRY_ATTEMPT_TAG = 'retry_attempt';

const storage = new AsyncLocalStorage<Attribution>();

const MAX_TAGS = 32;
const MAX_VALUE = 256;

function clean(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const s = String(value);
  return s.length > MAX_VALUE ? s.slice(0, MAX_VALUE) : s;
}

/** Nested runs inherit and override: inner keys win, tags merge. */
export function runWith<T>(input: AttributionInput, fn: () => T): T {
  const outer = storage.getStore();
  const tags: Record<string, string> = { ...(outer?.tags ?? {}) };
  let count = Object.keys(tags).length;
  for (const [key, value] of Object.entries(input)) {
    if (key === 'user' || key === 'project' || key === 'feature') continue;
    const v = clean(value);
    if (v === undefined) continue;
    if (!(key in tags) && count >= MAX_TAGS) continue;
    if (!(key in tags)) count++;
    tags[key.slice(0, 64)] = v;
  }
  const next: Attribution = {
    user: clean(input.user) ?? outer?.user,
    project: clean(input.project) ?? outer?.project,
    feature: clean(input.feature) ?? outer?.feature,
    tags,
  };
  return storage.run(next, fn);
}

export function currentAttribution(): Attribution | undefined {
  return storage.getStore();
}
