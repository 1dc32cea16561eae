import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BudgetFigures,
  createBudgetGauges,
  observeSettling,
  type SettleFigures,
} from '../../../src/telemetry/instruments/budgets.js';
import { observeSource, type SourceUnderTest } from '../../helpers/scrape.js';

let source: SourceUnderTest | undefined;
afterEach(() => source?.shutdown());

const DAILY: BudgetFigures = {
  id: 'b-1',
  name: 'Daily spend',
  spent_usd: 0.25,
  limit_usd: 1,
  forecast_usd: 0.75,
};
const TOTAL: BudgetFigures = { id: 'b-2', name: 'Triage', spent_usd: 2, limit_usd: 10, forecast_usd: null };

function gauges() {
  return createBudgetGauges(resourceFromAttributes({ 'service.name': 'llm-meter-test' }));
}

describe('budget gauges on /metrics', () => {
  it('has spent, limit and forecast per budget, labelled by id and name; no forecast for a total budget', async () => {
    const budgetGauges = gauges();
    budgetGauges.add({ list: async () => [DAILY, TOTAL] });
    source = observeSource(() => {}, [budgetGauges.producer]);
    const scrape = await source.scrape();
    expect(scrape.families).toEqual([
      '# HELP llm_meter_budget_spent Spend counted against the budget in its current period.',
      '# TYPE llm_meter_budget_spent gauge',
      '# HELP llm_meter_budget_limit The budget limit per period.',
      '# TYPE llm_meter_budget_limit gauge',
      '# HELP llm_meter_budget_forecast Projected spend at the end of the current period (absent for total budgets).',
      '# TYPE llm_meter_budget_forecast gauge',
    ]);
    expect(scrape.series).toEqual([
      'llm_meter_budget_spent{llm_meter_budget_id="b-1",llm_meter_budget_name="Daily spend"}',
      'llm_meter_budget_spent{llm_meter_budget_id="b-2",llm_meter_budget_name="Triage"}',
      'llm_meter_budget_limit{llm_meter_budget_id="b-1",llm_meter_budget_name="Daily spend"}',
      'llm_meter_budget_limit{llm_meter_budget_id="b-2",llm_meter_budget_name="Triage"}',
      'llm_meter_budget_forecast{llm_meter_budget_id="b-1",llm_meter_budget_name="Daily spend"}',
    ]);
    const m = scrape.exposition;
    expect(m.sum('llm_meter_budget_spent', { llm_meter_budget_id: 'b-2' })).toBe(2);
    expect(m.sum('llm_meter_budget_limit', { llm_meter_budget_id: 'b-1' })).toBe(1);
    expect(m.sum('llm_meter_budget_forecast', { llm_meter_budget_id: 'b-1' })).toBe(0.75);
  });

  it('shows exactly the budgets that exist at each scrape, and none once the source is removed', async () => {
    const budgetGauges = gauges();
    let budgets = [DAILY, TOTAL];
    const remove = budgetGauges.add({ list: async () => budgets });
    source = observeSource(() => {}, [budgetGauges.producer]);
    expect((await source.scrape()).exposition.find('llm_meter_budget_limit')).toHaveLength(2);
    budgets = [TOTAL];
    expect((await source.scrape()).series).toEqual([
      'llm_meter_budget_spent{llm_meter_budget_id="b-2",llm_meter_budget_name="Triage"}',
      'llm_meter_budget_limit{llm_meter_budget_id="b-2",llm_meter_budget_name="Triage"}',
    ]);
    remove();
    const after = await source.scrape();
    expect(after.families, 'no budget, no family').toEqual([]);
  });

  it('reports a source that fails as a collection error and keeps the others', async () => {
    const budgetGauges = gauges();
    budgetGauges.add({ list: () => Promise.reject(new Error('database is locked')) });
    budgetGauges.add({ list: async () => [DAILY] });
    source = observeSource(() => {}, [budgetGauges.producer]);
    const scrape = await source.scrape();
    expect(scrape.errors).toHaveLength(1);
    expect(scrape.exposition.find('llm_meter_budget_spent')).toHaveLength(1);
  });
});

describe('settling spend against budgets on /metrics', () => {
  it('has a counter per settle outcome and a gauge of spends waiting, with their help text', async () => {
    const stats: SettleFigures = { settled: 30, failed: 2, dropped: 1, invalid: 4, pending: 6 };
    source = observeSource((registry) => observeSettling(registry, () => stats));
    const scrape = await source.scrape();
    expect(scrape.families).toEqual([
      '# HELP llm_meter_budget_settled_total Finished calls whose spend is committed to their budgets.',
      '# TYPE llm_meter_budget_settled_total counter',
      '# HELP llm_meter_budget_settle_failed_total Budget spend commits that failed (the spend is kept and retried).',
      '# TYPE llm_meter_budget_settle_failed_total counter',
      '# HELP llm_meter_budget_settle_dropped_total Calls whose spend was given up: the retry queue overflowed, or it still waited at shutdown.',
      '# TYPE llm_meter_budget_settle_dropped_total counter',
      '# HELP llm_meter_budget_settle_invalid_total Calls whose spend the database refused (their budget was deleted meanwhile).',
      '# TYPE llm_meter_budget_settle_invalid_total counter',
      '# HELP llm_meter_budget_settle_pending Calls whose spend waits for the database.',
      '# TYPE llm_meter_budget_settle_pending gauge',
    ]);
    const m = scrape.exposition;
    expect(Object.fromEntries(scrape.series.map((name) => [name, m.sum(name)]))).toEqual({
      llm_meter_budget_settled_total: 30,
      llm_meter_budget_settle_failed_total: 2,
      llm_meter_budget_settle_dropped_total: 1,
      llm_meter_budget_settle_invalid_total: 4,
      llm_meter_budget_settle_pending: 6,
    });
  });
});
