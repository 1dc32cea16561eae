/**
 * A budget's scope. The keys and their order come from the server (config.js is generated from
 * SCOPE_KEYS in src/common/budget-shape.ts), so a key added there shows here without an edit.
 */
import { SCOPE_KEYS } from './config.js';

const entries = (scope) => SCOPE_KEYS.filter((k) => scope?.[k] !== undefined).map((k) => [k, scope[k]]);

/** The scope as usage filters (`user=…&feature=…`): the calls the budget counts. */
export const scopeFilters = (scope) => Object.fromEntries(entries(scope));

export function describeScope(scope) {
  const parts = entries(scope).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' · ') : 'all calls';
}
