/**
 * Prometheus exposition for `GET /metrics`, from the OpenTelemetry metrics SDK.
 *
 * The meter records its GenAI and cost metrics on whatever MeterProvider it is given
 * (metrics.ts); this file makes one whose reader is the OpenTelemetry Prometheus exporter,
 * kept from starting its own HTTP server so the app's Express route serves the text instead
 * (same port, same bearer token). Budget figures and the meter's own counters are read at
 * scrape time, so a scrape always shows the current period's spend.
 *
 * Budgets are created, deleted and renamed, so their gauges come from a MetricProducer on the
 * Prometheus reader rather than from observable instruments: with cumulative temporality the
 * SDK keeps exporting every attribute set an observable instrument ever reported, and a deleted
 * budget would linger with its last value. The producer reports exactly the budgets that exist
 * at each scrape; they appear on this reader only, not on other readers of the provider.
 *
 *   const prometheus = createPrometheusMetrics();
 *   const meter = createMeter({ meterProvider: prometheus.meterProvider });
 *   prometheus.observe(meter);
 *   createServer(meter, { metrics: prometheus });
 *
 * Names as the exporter writes them: dots become underscores, monotonic sums get `_total`,
 * histograms `_bucket`/`_sum`/`_count`; this exporter version adds no unit suffix
 * (`llm_meter.cost`, unit USD → `llm_meter_cost_total`).
 */
import { createServer, type Server } from 'node:http';
import { type BatchObservableResult, type Observable, ValueType } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type GaugeMetricData,
  type IMetricReader,
  MeterProvider,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { ProxyStats } from '../proxy/types.js';
import { SCOPE } from './semconv.js';

/** The same instrumentation scope as metrics.ts, so every llm-meter series shares its labels. */

/** Prometheus text format 0.0.4: what Prometheus 2 and 3 both parse without a fallback. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export const METRIC_BUDGET_SPENT = 'llm_meter.budget.spent';
export const METRIC_BUDGET_LIMIT = 'llm_meter.budget.limit';
export const METRIC_BUDGET_FORECAST = 'llm_meter.budget.forecast';
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

/** The parts of a meter that `observe` reads; `createMeter()`'s result satisfies it. */
export interface ObservedMeter {
  /** A running gateway (`startProxy()`): its requests, circuits and rate-limit budgets. */
  readonly gateway?: { stats(): ProxyStats } | null;
  readonly budgets?: (BudgetSource & { stats?(): SettleStats }) | null;
  readonly store?: {
    stats(): {
      written: number;
      failed: number;
      dropped: number;
      invalid: number;
      clamped?: number;
      pending: number;
    };
  } | null;
  stats?(): { inFlight: number; sinkErrors: number; sinkErrorsBy?: Record<string, number> };
}

const CIRCUIT_STATE = { closed: 0, half_open: 1, open: 2 } as const;

/** Budget spend accounting: commits retried, spends waiting, given up or refused. */
interface SettleStats {
  settled: number;
  failed: number;
  dropped: number;
  invalid: number;
  pending: number;
}

export interface PrometheusMetricsOptions {
  /** Default: `service.name` = `llm-meter`. Appears as the `target_info` series. */
  resource?: Resource;
  /** More readers on the same provider, e.g. an OTLP PeriodicExportingMetricReader. */
  readers?: IMetricReader[];
  /** How long a scrape waits for observable callbacks (budgets read SQLite). Default 10 s. */
  collectTimeoutMs?: number;
  /** Diagnostic logger for collection errors. Default: silent. */
  logger?: (message: string, error?: unknown) => void;
}

export interface PrometheusMetrics {
  /** Pass to `createMeter({ meterProvider })`. */
  readonly meterProvider: MeterProvider;
  /** The `Content-Type` of what `scrape()` returns. */
  readonly contentType: string;
  /**
   * Budget gauges (spent, limit, forecast in USD, per budget) and the meter's own counters,
   * read at each scrape. Returns a function that stops observing.
   */
  observe(meter: ObservedMeter): () => void;
  /** Collect and serialize: the body of `GET /metrics`. */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

const BUDGET_GAUGES = [
  [METRIC_BUDGET_SPENT, 'Spend counted against the budget in its current period.', 'spent_usd'],
  [METRIC_BUDGET_LIMIT, 'The budget limit per period.', 'limit_usd'],
  [
    METRIC_BUDGET_FORECAST,
    'Projected spend at the end of the current period (absent for total budgets).',
    'forecast_usd',
  ],
] as const;

/** One gauge per budget figure, with a data point per budget that exists now. */
function budgetProducer(sources: Set<BudgetSource>, resource: Resource): MetricProducer {
  return {
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
      const metrics: GaugeMetricData[] = BUDGET_GAUGES.map(([name, description, field]) => ({
        descriptor: { name, description, unit: 'USD', valueType: ValueType.DOUBLE },
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
}

export function createPrometheusMetrics(options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const log = options.logger ?? (() => {});
  // preventServerStart: the Express app serves the text, on its port and behind its token.
  const resource = options.resource ?? resourceFromAttributes({ 'service.name': 'llm-meter' });
  const budgetSources = new Set<BudgetSource>();
  const exporter = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [budgetProducer(budgetSources, resource)],
  });
  const serializer = new PrometheusSerializer();
  const meterProvider = new MeterProvider({ resource, readers: [exporter, ...(options.readers ?? [])] });
  const meter = meterProvider.getMeter(SCOPE.name, SCOPE.version);
  const timeoutMillis = options.collectTimeoutMs ?? 10_000;

  function observe(source: ObservedMeter): () => void {
    const removers: Array<() => void> = [];
    const batch = (observables: Observable[], callback: (result: BatchObservableResult) => unknown) => {
      const safe = async (result: BatchObservableResult) => {
        try {
          await callback(result);
        } catch (error) {
          log('llm-meter: a metrics callback failed', error);
        }
      };
      meter.addBatchObservableCallback(safe, observables);
      removers.push(() => meter.removeBatchObservableCallback(safe, observables));
    };

    const budgets = source.budgets;
    if (budgets) {
      budgetSources.add(budgets);
      removers.push(() => budgetSources.delete(budgets));
    }

    const store = source.store;
    /** Counters read from a stats object at each scrape (one callback for all), and its pending gauge. */
    function observeCounters<K extends string>(
      counters: readonly [key: K, name: string, unit: string, description: string][],
      pending: readonly [name: string, unit: string, description: string],
      read: () => Record<K | 'pending', number>,
    ): void {
      const instruments = counters.map(
        ([key, name, unit, description]) =>
          [key, meter.createObservableCounter(name, { unit, description })] as const,
      );
      const gauge = meter.createObservableGauge(pending[0], { unit: pending[1], description: pending[2] });
      batch([...instruments.map(([, instrument]) => instrument), gauge], (result) => {
        const values = read();
        for (const [key, instrument] of instruments) result.observe(instrument, values[key]);
        result.observe(gauge, values.pending);
      });
    }

    if (store) {
      observeCounters(
        [
          ['written', 'llm_meter.store.written', '{record}', 'Usage records committed to the store.'],
          ['failed', 'llm_meter.store.failed', '{commit}', 'Store commits that failed (retried).'],
          [
            'dropped',
            'llm_meter.store.dropped',
            '{record}',
            'Usage records discarded: queue overflow or written after close.',
          ],
          [
            'invalid',
            'llm_meter.store.invalid',
            '{record}',
            'Usage records refused and discarded, alone (the rest of their batch committed).',
          ],
          [
            'clamped',
            'llm_meter.store.clamped',
            '{record}',
            'Usage records stored with out-of-range figures clamped (tokens, cost, durations).',
          ],
        ],
        ['llm_meter.store.pending', '{record}', 'Usage records waiting to be committed.'],
        () => ({ clamped: 0, ...store.stats() }),
      );
    }

    const stats = source.stats?.bind(source);
    if (stats) {
      const inFlight = meter.createObservableUpDownCounter('llm_meter.calls.in_flight', {
        unit: '{call}',
        description: 'Metered calls started and not yet recorded.',
      });
      const sinkErrors = meter.createObservableCounter('llm_meter.sink.errors', {
        unit: '{error}',
        description: 'Failures inside llm-meter (parsing, export, storage) swallowed to keep calls intact.',
      });
      batch([inFlight, sinkErrors], (result) => {
        const s = stats();
        result.observe(inFlight, s.inFlight);
        // By place (spans, metrics, store, budgets...) where the meter says; the total otherwise.
        if (s.sinkErrorsBy) {
          for (const [sink, count] of Object.entries(s.sinkErrorsBy))
            result.observe(sinkErrors, count, { sink });
        } else {
          result.observe(sinkErrors, s.sinkErrors);
        }
      });
    }

    const budgetStats = source.budgets?.stats?.bind(source.budgets);
    if (budgetStats) {
      observeCounters(
        [
          [
            'settled',
            'llm_meter.budget.settled',
            '{call}',
            'Finished calls whose spend is committed to their budgets.',
          ],
          [
            'failed',
            'llm_meter.budget.settle_failed',
            '{commit}',
            'Budget spend commits that failed (the spend is kept and retried).',
          ],
          [
            'dropped',
            'llm_meter.budget.settle_dropped',
            '{call}',
            'Calls whose spend was given up: the retry queue overflowed, or it still waited at shutdown.',
          ],
          [
            'invalid',
            'llm_meter.budget.settle_invalid',
            '{call}',
            'Calls whose spend the database refused (their budget was deleted meanwhile).',
          ],
        ],
        ['llm_meter.budget.settle_pending', '{call}', 'Calls whose spend waits for the database.'],
        budgetStats,
      );
    }

    const gateway = source.gateway;
    if (gateway) {
      const counter = (name: string, unit: string, description: string) =>
        meter.createObservableCounter(name, { unit, description });
      const gauge = (name: string, unit: string, description: string) =>
        meter.createObservableGauge(name, { unit, description });
      const requests = counter('llm_meter.gateway.requests', '{request}', 'Requests the gateway received.');
      const inFlight = meter.createObservableUpDownCounter('llm_meter.gateway.in_flight', {
        unit: '{request}',
        description: 'Requests the gateway is answering now.',
      });
      const errors = counter(
        'llm_meter.gateway.errors',
        '{request}',
        'Requests the gateway answered itself: no route, bad key, upstream unreachable, timeouts.',
      );
      const circuitState = gauge(
        'llm_meter.circuit.state',
        '1',
        'Each circuit (provider/model): 0 closed, 1 half-open, 2 open (calls refused locally).',
      );
      const circuitFailures = gauge(
        'llm_meter.circuit.failures',
        '{call}',
        'Failures inside the circuit breaker window, per circuit.',
      );
      const queued = gauge('llm_meter.rate_limiter.queued', '{call}', 'Calls waiting for rate-limit budget.');
      const limited = gauge(
        'llm_meter.rate_limiter.in_flight',
        '{call}',
        'Calls sent under the rate limiter.',
      );
      const remainingRequests = gauge(
        'llm_meter.rate_limiter.remaining_requests',
        '{request}',
        "The provider's remaining request budget, as last reported.",
      );
      const remainingTokens = gauge(
        'llm_meter.rate_limiter.remaining_tokens',
        '{token}',
        "The provider's remaining token budget, as last reported.",
      );
      const rateLimited = counter(
        'llm_meter.rate_limiter.rate_limited',
        '{call}',
        '429s the provider answered through the rate limiter.',
      );
      const refused = counter(
        'llm_meter.rate_limiter.refused',
        '{call}',
        'Calls the rate limiter refused itself.',
      );
      const all = [
        requests,
        inFlight,
        errors,
        circuitState,
        circuitFailures,
        queued,
        limited,
        remainingRequests,
        remainingTokens,
        rateLimited,
        refused,
      ];
      batch(all, (result) => {
        const s = gateway.stats();
        result.observe(requests, s.requests);
        result.observe(inFlight, s.inFlight);
        result.observe(errors, s.gatewayErrors);
        for (const [circuit, c] of Object.entries(s.circuits)) {
          const at = { 'llm_meter.circuit': circuit };
          result.observe(circuitState, CIRCUIT_STATE[c.state], at);
          result.observe(circuitFailures, c.failures, at);
        }
        for (const [key, r] of Object.entries(s.rateLimits)) {
          const at = { 'llm_meter.rate_limit.key': key };
          result.observe(queued, r.queued, at);
          result.observe(limited, r.inFlight, at);
          if (r.remainingRequests !== null) result.observe(remainingRequests, r.remainingRequests, at);
          if (r.remainingTokens !== null) result.observe(remainingTokens, r.remainingTokens, at);
          result.observe(rateLimited, r.rateLimited, at);
          result.observe(refused, r.refused, at);
        }
      });
    }

    return () => {
      for (const remove of removers.splice(0)) remove();
    };
  }

  return {
    meterProvider,
    contentType: PROMETHEUS_CONTENT_TYPE,
    observe,
    async scrape() {
      const { resourceMetrics, errors } = await exporter.collect({ timeoutMillis });
      for (const error of errors) log('llm-meter: metrics collection error', error);
      return serializer.serialize(resourceMetrics);
    },
    shutdown: () => meterProvider.shutdown(),
  };
}

/**
 * A listener for `GET /metrics` and nothing else, for a process that has no HTTP API of its own
 * (the gateway serves it on a port apart from the one its clients use).
 */
export function serveMetrics(prometheus: PrometheusMetrics, port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('Not found: this port serves GET /metrics only.\n');
      return;
    }
    prometheus.scrape().then(
      (body) => res.writeHead(200, { 'content-type': prometheus.contentType }).end(body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
