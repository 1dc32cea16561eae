/**
 * The budgets' figures: a gauge per budget (spent, limit, forecast in USD) and the accounting of
 * settling spend against them (`Budgets.stats()`).
 *
 * Budgets are created, deleted and renamed, so their gauges come from a MetricProducer on the
 * Prometheus reader rather than from observable instruments: with cumulative temporality the
 * SDK keeps exporting every attribute set an observable instrument ever reported, and a deleted
 * budget would linger with its last value. The producer reports exactly the budgets that exist
 * at each scrape; they appear on that reader only, not on other readers of the provider.
 */
import { ValueType } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type GaugeMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { SCOPE } from '../semconv.js';
import { type InstrumentSpec, observeTallies, type Registry } from './register.js';

export const METRIC_BUDGET_SPENT = 'llm_meter.budget.spent';
export const METRIC_BUDGET_LIMIT = 'llm_meter.budget.limit';
export const METRIC_BUDGET_FORECAST = 'llm_meter.budget.forecast';
export const METRIC_BUDGET_SETTLED = 'llm_meter.budget.settled';
export const METRIC_BUDGET_SETTLE_FAILED = 'llm_meter.budget.settle_failed';
export const METRIC_BUDGET_SETTLE_DROPPED = 'llm_meter.budget.settle_dropped';
export const METRIC_BUDGET_SETTLE_INVALID = 'llm_meter.budget.settle_invalid';
export const METRIC_BUDGET_SETTLE_PENDING = 'llm_meter.budget.settle_pending';
export const ATTR_BUDGET_ID = 'llm_meter.budget.id';
export const ATTR_BUDGET_NAME = 'llm_meter.budget.name';

/** The figures of one budget this file reads (`Budgets.list()` returns more). */
export interface BudgetFigures {
  id: string;
  name: string;
  spent_usd: number;
  limit_usd: number;
  /** Null for a `total` budget: it has no period end to forecast to. */
  forecast_usd: number | null;
}

export interface BudgetSource {
  list(): Promise<readonly BudgetFigures[]>;
}

/** Budget spend accounting (`Budgets.stats()`): commits retried, spends waiting, given up or refused. */
export interface SettleFigures {
  settled: number;
  failed: number;
  dropped: number;
  invalid: number;
  pending: number;
}

const GAUGES: ReadonlyArray<InstrumentSpec & { field: 'spent_usd' | 'limit_usd' | 'forecast_usd' }> = [
  {
    name: METRIC_BUDGET_SPENT,
    unit: 'USD',
    description: 'Spend counted against the budget in its current period.',
    field: 'spent_usd',
  },
  { name: METRIC_BUDGET_LIMIT, unit: 'USD', description: 'The budget limit per period.', field: 'limit_usd' },
  {
    name: METRIC_BUDGET_FORECAST,
    unit: 'USD',
    description: 'Projected spend at the end of the current period (absent for total budgets).',
    field: 'forecast_usd',
  },
];

const SETTLE_COUNTERS: Record<Exclude<keyof SettleFigures, 'pending'>, InstrumentSpec> = {
  settled: {
    name: METRIC_BUDGET_SETTLED,
    unit: '{call}',
    description: 'Finished calls whose spend is committed to their budgets.',
  },
  failed: {
    name: METRIC_BUDGET_SETTLE_FAILED,
    unit: '{commit}',
    description: 'Budget spend commits that failed (the spend is kept and retried).',
  },
  dropped: {
    name: METRIC_BUDGET_SETTLE_DROPPED,
    unit: '{call}',
    description:
      'Calls whose spend was given up: the retry queue overflowed, or it still waited at shutdown.',
  },
  invalid: {
    name: METRIC_BUDGET_SETTLE_INVALID,
    unit: '{call}',
    description: 'Calls whose spend the database refused (their budget was deleted meanwhile).',
  },
};

const SETTLE_PENDING: InstrumentSpec = {
  name: METRIC_BUDGET_SETTLE_PENDING,
  unit: '{call}',
  description: 'Calls whose spend waits for the database.',
};

export function observeSettling(registry: Registry, stats: () => SettleFigures): void {
  observeTallies(registry, SETTLE_COUNTERS, SETTLE_PENDING, stats);
}

interface BudgetGauges {
  /** Give to the Prometheus exporter's `metricProducers`. */
  readonly producer: MetricProducer;
  /** Reports this source's budgets from the next scrape on; returns what stops it. */
  add(source: BudgetSource): () => void;
}

/** One gauge per budget figure, with a data point per budget that exists now. */
export function createBudgetGauges(resource: Resource): BudgetGauges {
  const sources = new Set<BudgetSource>();
  const producer: MetricProducer = {
    async collect(): Promise<CollectionResult> {
      const errors: unknown[] = [];
      const budgets: BudgetFigures[] = [];
      for (const source of sources) {
        try {
          budgets.push(...(await source.list()));
        } catch (error) {
          errors.push(error);
        }
      }
      const now = hrTime();
      const metrics: GaugeMetricData[] = GAUGES.map(({ name, unit, description, field }) => ({
        descriptor: { name, description, unit, valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: budgets.flatMap((budget) => {
          const value = budget[field];
          if (value === null) return [];
          const attributes = { [ATTR_BUDGET_ID]: budget.id, [ATTR_BUDGET_NAME]: budget.name };
          return [{ startTime: now, endTime: now, attributes, value }];
        }),
      }));
      return {
        resourceMetrics: {
          resource,
          scopeMetrics: budgets.length > 0 ? [{ scope: { ...SCOPE }, metrics }] : [],
        },
        errors,
      };
    },
  };
  return {
    producer,
    add(source) {
      sources.add(source);
      return () => sources.delete(source);
    },
  };
}
