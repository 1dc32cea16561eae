/**
 * A real Prometheus (Debian's /usr/bin/prometheus, started here on loopback with a generated
 * config and a temporary storage folder) scrapes the server's /metrics every second with the
 * bearer token; its HTTP API then answers with the cost of the metered calls, and evaluates
 * every PromQL expression of the Grafana dashboards. CI installs Prometheus with
 * .ci/setup-system.sh; without it the test is skipped, saying why.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelValuesQuery, loadDashboards, promQueries, toPromQL } from '../helpers/dashboards.js';
import {
  type GatewayWithTraffic,
  type MeteredServer,
  sendTraffic,
  startGatewayWithTraffic,
  startServerWithTraffic,
  trafficCalls,
} from '../helpers/traffic.js';

const PROMETHEUS = process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus';
const available = existsSync(PROMETHEUS);
const SKIP = `skipped: no Prometheus at ${PROMETHEUS} (apt-get install prometheus, or run .ci/setup-system.sh)`;
if (!available) console.warn(`test/telemetry/prometheus.test.ts ${SKIP}`);

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

let api: MeteredServer;
let gateway: GatewayWithTraffic | undefined;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let dir: string;
let log = '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An instant query through Prometheus' HTTP API; throws with Prometheus' error text. */
async function query(expr: string): Promise<Sample[]> {
  const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: Sample[] | [number, string] };
  };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  if (body.data?.resultType === 'scalar') {
    return [{ metric: {}, value: body.data.result as [number, string] }];
  }
  return body.data?.result as Sample[];
}

async function value(expr: string): Promise<number | null> {
  const [first] = await query(expr);
  return first ? Number(first.value[1]) : null;
}

/** Polls until `check` holds; Prometheus scrapes every second. */
async function until<T>(
  what: string,
  get: () => Promise<T>,
  check: (v: T) => boolean,
  ms = 45_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  let error: unknown;
  while (Date.now() < deadline) {
    try {
      last = await get();
      if (check(last)) return last;
    } catch (e) {
      error = e;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(last)} ${error ?? ''}\n${log}`);
}

beforeAll(async () => {
  if (!available) return;
  api = await startServerWithTraffic([
    { name: 'Daily spend', scope: {}, period: 'day', limit_usd: 0.01 },
    { name: 'Triage', scope: { feature: 'triage' }, period: 'total', limit_usd: 1 },
  ]);
  gateway = await startGatewayWithTraffic();

  dir = mkdtempSync(join(tmpdir(), 'llm-meter-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: llm-meter',
      '    metrics_path: /metrics',
      '    authorization:',
      '      type: Bearer',
      `      credentials: ${api.token}`,
      '    static_configs:',
      `      - targets: ["127.0.0.1:${api.port}"]`,
      // The gateway serves its metrics on a port of its own, without a token.
      '  - job_name: llm-meter-gateway',
      '    static_configs:',
      `      - targets: ["127.0.0.1:${gateway.metricsPort}"]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  prometheus.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  await until(
    'Prometheus to be ready',
    () => fetch(`${promUrl}/-/ready`).then((r) => r.status),
    (s) => s === 200,
  );
  // Enough scrapes for rate() over the dashboards' windows.
  await until(
    'three scrapes of llm-meter',
    () => value('count_over_time(up{job="llm-meter"}[1m])'),
    (n) => (n ?? 0) >= 3,
  );
  await until(
    'three scrapes of the gateway',
    () => value('count_over_time(up{job="llm-meter-gateway"}[1m])'),
    (n) => (n ?? 0) >= 3,
  );
}, 90_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
  }
  await api?.close();
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!available)(`Prometheus scraping /metrics (${available ? PROMETHEUS : SKIP})`, () => {
  it('scrapes the target with the bearer token, without errors', async () => {
    expect(await value('up{job="llm-meter"}'), 'up').toBe(1);
    const targets = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as {
      data: { activeTargets: Array<{ health: string; lastError: string; scrapePool: string }> };
    };
    const target = targets.data.activeTargets.find((t) => t.scrapePool === 'llm-meter');
    expect(target?.health, 'target health').toBe('up');
    expect(target?.lastError, 'last scrape error').toBe('');
  });

  it('answers with the cost of the metered calls, as the usage API counts it', async () => {
    const { totals } = await api.json<{ totals: { cost_usd: number; requests: number } }>(
      '/v1/usage/summary',
    );
    expect(totals.cost_usd).toBeGreaterThan(0);
    expect(
      await value('sum(llm_meter_cost_total{job="llm-meter"})'),
      'sum(llm_meter_cost_total{job="llm-meter"})',
    ).toBeCloseTo(totals.cost_usd, 12);
    expect(
      await value('sum(llm_meter_calls_total{job="llm-meter"})'),
      'sum(llm_meter_calls_total{job="llm-meter"})',
    ).toBe(totals.requests);
    const byModel = await query('sum by (gen_ai_request_model) (llm_meter_cost_total{job="llm-meter"})');
    expect(byModel.map((s) => s.metric['gen_ai_request_model']).sort()).toEqual(
      expect.arrayContaining(['claude-haiku-4-5', 'gpt-4o', 'gpt-4o-mini']),
    );
  });

  it('has the budget gauges', async () => {
    const { budgets } = await api.json<{
      budgets: Array<{ name: string; spent_usd: number; limit_usd: number }>;
    }>('/v1/budgets');
    for (const budget of budgets) {
      const name = JSON.stringify(budget.name);
      expect(
        await value(`llm_meter_budget_limit{llm_meter_budget_name=${name}}`),
        `${budget.name} limit`,
      ).toBe(budget.limit_usd);
      expect(
        await value(`llm_meter_budget_spent{llm_meter_budget_name=${name}}`),
        `${budget.name} spent`,
      ).toBeCloseTo(budget.spent_usd, 12);
    }
  });

  it('sees new calls within a few scrapes', async () => {
    await sendTraffic(api.meter, api.sim, trafficCalls(4, 50));
    const { totals } = await api.json<{ totals: { cost_usd: number; requests: number } }>(
      '/v1/usage/summary',
    );
    await until(
      'the new calls in Prometheus',
      () => value('sum(llm_meter_calls_total{job="llm-meter"})'),
      (n) => n === totals.requests,
    );
    expect(await value('sum(llm_meter_cost_total{job="llm-meter"})')).toBeCloseTo(totals.cost_usd, 12);
  });

  it('evaluates every PromQL expression of the Grafana dashboards, each with a result', async () => {
    const empty: string[] = [];
    let evaluated = 0;
    for (const dashboard of loadDashboards()) {
      for (const q of promQueries(dashboard)) {
        const labelValues = labelValuesQuery(q.expr);
        const expr = labelValues
          ? `count by (${labelValues.label}) (${toPromQL(labelValues.selector)})`
          : toPromQL(q.expr);
        const result = await query(expr).catch((error: Error) => {
          throw new Error(`${q.where}: Prometheus refused ${expr}: ${error.message}`);
        });
        evaluated++;
        if (result.length === 0) empty.push(`${q.where}: ${expr}`);
      }
    }
    expect(evaluated).toBeGreaterThan(30);
    expect(empty, 'expressions with no series').toEqual([]);
  });
});
