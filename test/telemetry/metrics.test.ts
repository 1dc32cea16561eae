/**
 * GET /metrics on the real app over loopback, after metered calls to the simulator: the
 * Prometheus exposition of the OpenTelemetry SDK agrees with the usage API, carries a gauge
 * per budget, counts the store's writes, and sits behind the API token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrometheusMetrics, PROMETHEUS_CONTENT_TYPE } from '../../src/telemetry/prometheus.js';
import { type Exposition, parseExposition } from '../helpers/exposition.js';
import { type MeteredServer, sendTraffic, startServerWithTraffic, trafficCalls } from '../helpers/traffic.js';

interface Totals {
  requests: number;
  cost_usd: number | null;
  input_tokens: number;
  output_tokens: number;
}
interface Budget {
  id: string;
  name: string;
  spent_usd: number;
  limit_usd: number;
  forecast_usd: number | null;
}

let api: MeteredServer;
let metrics: Exposition;

async function scrape(): Promise<Exposition> {
  const res = await api.fetch('/metrics');
  expect(res.status, 'GET /metrics').toBe(200);
  return parseExposition(await res.text());
}

beforeAll(async () => {
  api = await startServerWithTraffic([
    { name: 'Daily spend', scope: {}, period: 'day', limit_usd: 0.01 },
    { name: 'Triage, all time', scope: { feature: 'triage' }, period: 'total', limit_usd: 1 },
    { name: 'Nobody "quoted"', scope: { user: 'nobody' }, period: 'month', limit_usd: 5 },
  ]);
  metrics = await scrape();
});

afterAll(async () => {
  await api?.close();
});

describe('GET /metrics', () => {
  it('answers only with the bearer token, in Prometheus text format 0.0.4', async () => {
    expect((await api.fetch('/metrics', { token: null })).status, 'no token').toBe(401);
    expect((await api.fetch('/metrics', { token: 'wrong' })).status, 'wrong token').toBe(401);
    const res = await api.fetch('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('is documented in /openapi.json as secured', async () => {
    const doc = await api.json<{ paths: Record<string, { get?: { security?: unknown } }> }>('/openapi.json');
    expect(doc.paths['/metrics']?.get?.security, '/metrics security').toEqual([{ bearer: [] }]);
  });

  it('names metrics the Prometheus way: counters end in _total, histograms have buckets', () => {
    const expected: Record<string, string> = {
      llm_meter_cost_total: 'counter',
      llm_meter_calls_total: 'counter',
      gen_ai_client_token_usage: 'histogram',
      gen_ai_client_operation_duration: 'histogram',
      gen_ai_client_operation_time_to_first_chunk: 'histogram',
      gen_ai_client_operation_time_per_output_chunk: 'histogram',
      llm_meter_budget_spent: 'gauge',
      llm_meter_budget_limit: 'gauge',
      llm_meter_budget_forecast: 'gauge',
      llm_meter_store_written_total: 'counter',
    };
    for (const [name, type] of Object.entries(expected)) {
      expect(metrics.types.get(name), `# TYPE ${name}`).toBe(type);
    }
    for (const [family, type] of metrics.types) {
      if (type !== 'histogram') continue;
      for (const count of metrics.find(`${family}_count`)) {
        const same = (labels: Record<string, string>) =>
          JSON.stringify(Object.entries(labels).sort()) ===
          JSON.stringify(Object.entries({ ...count.labels, le: '+Inf' }).sort());
        const inf = metrics.find(`${family}_bucket`).filter((bucket) => same(bucket.labels));
        expect(inf, `${family} has a +Inf bucket per series`).toHaveLength(1);
        expect(inf[0]!.value, `${family} +Inf bucket equals _count`).toBe(count.value);
      }
    }
  });

  it('adds up to the usage API: cost, calls and tokens, in total and per model', async () => {
    const { totals } = await api.json<{ totals: Totals }>('/v1/usage/summary');
    expect(totals.cost_usd, 'some calls are priced').toBeGreaterThan(0);
    expect(metrics.sum('llm_meter_cost_total'), 'cost').toBeCloseTo(totals.cost_usd!, 12);
    expect(metrics.sum('llm_meter_calls_total'), 'calls').toBe(totals.requests);
    expect(metrics.sum('gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' }), 'input tokens').toBe(
      totals.input_tokens,
    );
    expect(
      metrics.sum('gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' }),
      'output tokens',
    ).toBe(totals.output_tokens);

    const byModel = await api.json<{ rows: Array<Totals & { model: string }> }>(
      '/v1/usage/summary?group_by=model',
    );
    for (const row of byModel.rows) {
      const match = { gen_ai_request_model: row.model };
      expect(metrics.sum('llm_meter_calls_total', match), `calls of ${row.model}`).toBe(row.requests);
      expect(metrics.sum('llm_meter_cost_total', match), `cost of ${row.model}`).toBeCloseTo(
        row.cost_usd ?? 0,
        12,
      );
    }
  });

  it('labels calls by outcome and failures by error class', async () => {
    const byOutcome = await api.json<{ rows: Array<{ outcome: string; requests: number }> }>(
      '/v1/usage/summary?group_by=outcome',
    );
    expect(byOutcome.rows.map((r) => r.outcome).sort()).toEqual(['cancelled', 'error', 'ok']);
    for (const row of byOutcome.rows) {
      expect(metrics.sum('llm_meter_calls_total', { llm_meter_outcome: row.outcome }), row.outcome).toBe(
        row.requests,
      );
    }
    const errors = await api.json<{ events: Array<{ error_type: string }> }>(
      '/v1/usage/events?outcome=error',
    );
    const classes = [...new Set(errors.events.map((e) => e.error_type))].sort();
    const labelled = [
      ...new Set(metrics.find('llm_meter_calls_total').flatMap((s) => s.labels['error_type'] ?? [])),
    ].sort();
    expect(labelled, 'error_type values').toEqual(classes);
    expect(classes.length, 'several error classes').toBeGreaterThanOrEqual(3);
  });

  it('has a spent, limit and forecast gauge per budget, as GET /v1/budgets shows them', async () => {
    const { budgets } = await api.json<{ budgets: Budget[] }>('/v1/budgets');
    expect(budgets).toHaveLength(3);
    for (const budget of budgets) {
      const match = { llm_meter_budget_id: budget.id, llm_meter_budget_name: budget.name };
      const gauge = (name: string) => metrics.find(name, match);
      expect(gauge('llm_meter_budget_spent')[0]?.value, `${budget.name} spent`).toBeCloseTo(
        budget.spent_usd,
        12,
      );
      expect(gauge('llm_meter_budget_limit')[0]?.value, `${budget.name} limit`).toBe(budget.limit_usd);
      if (budget.forecast_usd === null) {
        expect(gauge('llm_meter_budget_forecast'), `${budget.name} has no forecast`).toHaveLength(0);
      } else {
        // The forecast moves with the clock between the two reads: equal to within 1%.
        const forecast = gauge('llm_meter_budget_forecast')[0]?.value ?? Number.NaN;
        expect(Math.abs(forecast - budget.forecast_usd), `${budget.name} forecast`).toBeLessThanOrEqual(
          budget.forecast_usd * 0.01 + 1e-12,
        );
      }
    }
    const daily = budgets.find((b) => b.name === 'Daily spend')!;
    expect(daily.spent_usd, 'the daily budget saw every priced call').toBeGreaterThan(0);
  });

  it("counts the store's writes and the meter's own state", async () => {
    const { totals } = await api.json<{ totals: Totals }>('/v1/usage/summary');
    expect(metrics.sum('llm_meter_store_written_total'), 'rows written').toBe(totals.requests);
    expect(metrics.sum('llm_meter_store_dropped_total'), 'rows dropped').toBe(0);
    expect(metrics.sum('llm_meter_store_pending'), 'rows pending').toBe(0);
    expect(metrics.sum('llm_meter_calls_in_flight'), 'calls in flight').toBe(0);
    expect(metrics.sum('llm_meter_sink_errors_total'), 'internal errors').toBe(0);
  });

  it('shows new calls at the next scrape', async () => {
    const before = await scrape();
    await sendTraffic(api.meter, api.sim, trafficCalls(3, 100));
    const after = await scrape();
    const { totals } = await api.json<{ totals: Totals }>('/v1/usage/summary');
    expect(after.sum('llm_meter_calls_total') - before.sum('llm_meter_calls_total'), 'new calls').toBe(3);
    expect(after.sum('llm_meter_cost_total'), 'cost').toBeCloseTo(totals.cost_usd!, 12);
  });
});

describe('createPrometheusMetrics', () => {
  it('keeps serving the other metrics when reading the budgets fails', async () => {
    const logged: string[] = [];
    const prometheus = createPrometheusMetrics({ logger: (message) => logged.push(message) });
    prometheus.observe({
      budgets: { list: () => Promise.reject(new Error('database is locked')) },
      store: { stats: () => ({ written: 7, failed: 0, dropped: 0, invalid: 0, pending: 0 }) },
    });
    const text = await prometheus.scrape();
    const scraped = parseExposition(text);
    expect(scraped.sum('llm_meter_store_written_total')).toBe(7);
    expect(scraped.find('llm_meter_budget_spent')).toHaveLength(0);
    expect(logged).toContain('llm-meter: metrics collection error');
    await prometheus.shutdown();
  });

  it('forgets a budget once it is gone, and everything once told to stop', async () => {
    const prometheus = createPrometheusMetrics();
    let budgets = [
      { id: 'b1', name: 'One', spent_usd: 1, limit_usd: 2, forecast_usd: null },
      { id: 'b2', name: 'Two', spent_usd: 3, limit_usd: 4, forecast_usd: 5 },
    ];
    const stop = prometheus.observe({ budgets: { list: async () => budgets } });
    expect(parseExposition(await prometheus.scrape()).sum('llm_meter_budget_limit')).toBe(6);
    budgets = budgets.slice(1);
    const after = parseExposition(await prometheus.scrape());
    expect(after.find('llm_meter_budget_limit').map((s) => s.labels['llm_meter_budget_name'])).toEqual([
      'Two',
    ]);
    stop();
    expect(parseExposition(await prometheus.scrape()).find('llm_meter_budget_limit')).toHaveLength(0);
    await prometheus.shutdown();
  });
});
