/** Which budgets a call falls under. */
import type { CallRecord } from '../record.js';
import type { BudgetScope } from './types.js';

export interface CallScope {
  user?: string | undefined;
  project?: string | undefined;
  feature?: string | undefined;
  provider: string;
  /** The models the call names; null when it names none that can be trusted: every model's budgets apply. */
  models: (string | null)[] | null;
}

export function scopeMatches(scope: BudgetScope, call: CallScope): boolean {
  if (scope.user !== undefined && scope.user !== call.user) return false;
  if (scope.project !== undefined && scope.project !== call.project) return false;
  if (scope.feature !== undefined && scope.feature !== call.feature) return false;
  if (scope.provider !== undefined && scope.provider !== call.provider) return false;
  if (scope.model !== undefined && call.models !== null && !call.models.includes(scope.model)) return false;
  return true;
}

export function callScopeOf(record: CallRecord): CallScope {
  return {
    user: record.attribution.user,
    project: record.attribution.project,
    feature: record.attribution.feature,
    provider: record.provider,
    models: [record.requestModel, record.responseModel],
  };
}
