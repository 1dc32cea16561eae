/**
 * What the usage rows say a scope spent: a new budget starts from the spend already made in its
 * period, and a forecast projects the recent burn rate. Read through the part of the usage
 * store it needs (src/store/types.ts's UsageStore has it), named here so that the budgets do not
 * import the store.
 */
import { SCOPE_KEYS } from '../common/budget-shape.js';
import type { BudgetScope, SpendRow } from './types.js';
import { toNanos } from './units.js';

export interface UsageTotals {
  flush(): Promise<void>;
  summary(query: { fromMs: number; toMs: number; filters: Record<string, string> }): Promise<{
    totals: { cost_usd: number | null; requests: number; unpriced_requests: number };
  }>;
}

/** The spend of the calls in [fromMs, toMs) that fall in `scope`; zero without a usage store. */
export async function spendFromUsage(
  usage: UsageTotals | null | undefined,
  scope: BudgetScope,
  fromMs: number,
  toMs: number,
): Promise<SpendRow> {
  if (!usage || toMs <= fromMs) return { spentNanos: 0, requests: 0, unpricedRequests: 0 };
  const filters: Record<string, string> = {};
  for (const key of SCOPE_KEYS) if (scope[key] !== undefined) filters[key] = scope[key]!;
  await usage.flush();
  const { totals } = await usage.summary({ fromMs, toMs, filters });
  return {
    spentNanos: toNanos(totals.cost_usd ?? 0),
    requests: totals.requests,
    unpricedRequests: totals.unpriced_requests,
  };
}
