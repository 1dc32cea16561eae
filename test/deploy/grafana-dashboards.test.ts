/**
 * The Grafana dashboards in dashboards/ against what llm-meter really serves: every PromQL
 * expression names metrics and labels that /metrics emits after metered calls to the simulator,
 * and every Infinity query reads an API route and fields that the JSON API returns.
 * (test/telemetry/prometheus.test.ts runs the same expressions in a real Prometheus.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allPanels,
  type Dashboard,
  infinityQueries,
  labelValuesQuery,
  loadDashboards,
  promQueries,
  promqlNames,
} from '../helpers/dashboards.js';
import { type Exposition, parseExposition } from '../helpers/exposition.js';
import {
  type GatewayWithTraffic,
  type MeteredServer,
  startGatewayWithTraffic,
  startServerWithTraffic,
} from '../helpers/traffic.js';

const dashboards = loadDashboards();
let api: MeteredServer;
let gateway: GatewayWithTraffic;
/** What llm-meter serve's /metrics emits; the gateway dashboard is checked against the gateway's. */
let emitted: Exposition;
let gatewayEmitted: Exposition;

beforeAll(async () => {
  api = await startServerWithTraffic([
    { name: 'Daily spend', scope: {}, period: 'day', limit_usd: 0.01 },
    { name: 'Triage', scope: { feature: 'triage' }, period: 'total', limit_usd: 1 },
  ]);
  emitted = parseExposition(await (await api.fetch('/metrics')).text());
  gateway = await startGatewayWithTraffic();
  gatewayEmitted = parseExposition(await (await fetch(gateway.metricsUrl)).text());
});

afterAll(async () => {
  await api?.close();
  await gateway?.close();
});

describe('dashboards/*.json', () => {
  it('are Grafana dashboards: unique uids, titles, panel ids, and a description saying where data comes from', () => {
    expect(dashboards.map((d) => d.file)).toEqual([
      'llm-meter-budgets.json',
      'llm-meter-gateway.json',
      'llm-meter-usage.json',
    ]);
    expect(new Set(dashboards.map((d) => d.uid)).size, 'unique uids').toBe(dashboards.length);
    for (const dashboard of dashboards) {
      expect(dashboard.title, `${dashboard.file} title`).toMatch(/^llm-meter/);
      expect(dashboard.schemaVersion, `${dashboard.file} schemaVersion`).toBeGreaterThanOrEqual(39);
      expect(dashboard.description, `${dashboard.file} description`).toBeTruthy();
      const ids = allPanels(dashboard).map((p) => p.id);
      expect(new Set(ids).size, `${dashboard.file} unique panel ids`).toBe(ids.length);
      for (const panel of allPanels(dashboard)) {
        const { x, y, w, h } = panel.gridPos ?? { x: -1, y: -1, w: 0, h: 0 };
        expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, `${panel.title} gridPos`).toBe(true);
      }
    }
    const usage = dashboards.find((d) => d.uid === 'llm-meter-usage')!;
    expect(usage.description, 'says where cost by user and feature lives').toMatch(/Infinity/);
    expect(usage.description).toMatch(/built-in dashboard/);
  });

  it('take every data source from a dashboard variable', () => {
    for (const dashboard of dashboards) {
      const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
      for (const panel of allPanels(dashboard)) {
        if (panel.type === 'row') continue;
        for (const source of [panel.datasource, ...(panel.targets ?? []).map((t) => t['datasource'])]) {
          const uid = (source as { uid?: string } | undefined)?.uid ?? '';
          const name = /^\$\{(\w+)\}$/.exec(uid)?.[1];
          expect(name, `${dashboard.file} › ${panel.title}: data source ${uid}`).toBeDefined();
          expect(variables.get(name!)?.type, `${dashboard.file} › variable ${name}`).toBe('datasource');
        }
      }
    }
  });

  it('cover cost, tokens, latency, time to first token, errors, budgets and the gateway', () => {
    const used = new Set(
      dashboards.flatMap((d) => promQueries(d).flatMap((q) => promqlNames(q.expr).metrics)),
    );
    for (const name of [
      'llm_meter_cost_total',
      'llm_meter_calls_total',
      'gen_ai_client_token_usage_sum',
      'gen_ai_client_operation_duration_bucket',
      'gen_ai_client_operation_time_to_first_chunk_bucket',
      'gen_ai_client_operation_time_per_output_chunk_bucket',
      'llm_meter_budget_spent',
      'llm_meter_budget_limit',
      'llm_meter_budget_forecast',
      'llm_meter_gateway_requests_total',
      'llm_meter_circuit_state',
      'llm_meter_rate_limiter_remaining_requests',
    ]) {
      expect(used, `a dashboard reads ${name}`).toContain(name);
    }
  });

  it('name only metrics and labels that /metrics emits', () => {
    const checked: string[] = [];
    for (const dashboard of dashboards) {
      const exposition = dashboard.uid === 'llm-meter-gateway' ? gatewayEmitted : emitted;
      for (const query of promQueries(dashboard)) {
        const labelValues = labelValuesQuery(query.expr);
        const names = promqlNames(labelValues ? labelValues.selector : query.expr);
        if (labelValues) names.labels.push(labelValues.label);
        expect(names.metrics.length, `${query.where}: names a metric`).toBeGreaterThan(0);
        const labels = new Set<string>();
        for (const metric of names.metrics) {
          expect(exposition.names, `${query.where}: ${metric} is emitted`).toContain(metric);
          for (const label of exposition.labels.get(metric) ?? []) labels.add(label);
        }
        for (const label of names.labels) {
          expect(labels, `${query.where}: label ${label} is on ${names.metrics.join(', ')}`).toContain(label);
        }
        checked.push(query.where);
      }
    }
    expect(checked.length, 'expressions checked').toBeGreaterThan(30);
  });

  it("read llm-meter's JSON API through Infinity at routes and fields it serves", async () => {
    const queries = dashboards.flatMap((d: Dashboard) => infinityQueries(d));
    expect(queries.length, 'Infinity queries').toBeGreaterThanOrEqual(3);
    const now = Date.now();
    for (const query of queries) {
      expect(query.url, `${query.where}: a path below the data source URL`).toMatch(/^\/v1\//);
      // Grafana's time variables, as Grafana interpolates them for the last hour.
      const url = query.url
        .replace(/\$\{__from:date:iso\}/g, new Date(now - 3_600_000).toISOString())
        .replace(/\$\{__to:date:iso\}/g, new Date(now + 60_000).toISOString());
      expect(url, `${query.where}: only Grafana's time variables`).not.toMatch(/\$/);
      const res = await api.fetch(url);
      expect(res.status, `${query.where}: GET ${url}`).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      const rows = body[query.root] as Array<Record<string, unknown>>;
      expect(Array.isArray(rows) && rows.length > 0, `${query.where}: ${query.root} has rows`).toBe(true);
      for (const column of query.columns) {
        expect(Object.keys(rows[0]!), `${query.where}: field ${column}`).toContain(column);
      }
    }
  });
});
