/**
 * A metered server with real traffic, for the tests of what people look at: /metrics, the
 * Grafana dashboards, Prometheus and the built-in dashboard. Calls go through `meter.fetch` to
 * the simulator, rows into a real SQLite file, and the Express app listens on loopback.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DemoCall, sendDemoCalls } from '../../src/cli/demo.js';
import { createMeter, type MeterOptions } from '../../src/index.js';
import { createServer } from '../../src/server/index.js';
import { type Behavior, type Simulator, startSimulator } from '../../src/sim/index.js';
import { createPrometheusMetrics, type PrometheusMetrics } from '../../src/telemetry/prometheus.js';

/** USD per 1M tokens. `llama-3.1-8b-instant` is left to the catalog (or unpriced). */
export const TRAFFIC_PRICES: MeterOptions['prices'] = {
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'gpt-4o': { input: 2.5, output: 10, cachedInput: 1.25 },
  'claude-haiku-4-5': { input: 1, output: 5, cachedInput: 0.1 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
};

/** A demo call whose simulator behaviour is typed. */
export interface TrafficCall extends DemoCall {
  sim?: Partial<Behavior>;
}

const USERS = ['alice', 'bob', 'carol', 'dave'];
const FEATURES = ['triage', 'summarize', 'search'];
const ANTHROPIC = { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-traffic' };
const prompt = (i: number) =>
  `Ticket ${i}: the printer is on fire again. ${'Some context. '.repeat(5 + (i % 4) * 8)}`;

/**
 * A mixed workload: OpenAI streamed and not, Anthropic streamed with cache reads, embeddings,
 * and a Groq-style server reporting its own queue and prefill times.
 */
export function trafficCalls(count = 18, offset = 0): TrafficCall[] {
  const calls: TrafficCall[] = [];
  for (let n = 0; n < count; n++) {
    const i = n + offset;
    const user = USERS[i % USERS.length]!;
    const feature = FEATURES[i % FEATURES.length]!;
    const sim: Partial<Behavior> = {
      queueMs: i % 4 === 0 ? 40 : 4,
      prefillMsPerToken: 0.05,
      msPerToken: 1,
      outputTokens: 6 + (i % 5) * 4,
    };
    const messages = [{ role: 'user', content: prompt(i) }];
    switch (i % 6) {
      case 0:
      case 3:
        calls.push({
          user,
          feature,
          path: '/v1/chat/completions',
          body: { model: 'gpt-4o-mini', stream: true, messages },
          sim,
        });
        break;
      case 1:
        calls.push({
          user,
          feature,
          path: '/v1/messages',
          headers: ANTHROPIC,
          body: { model: 'claude-haiku-4-5', max_tokens: 256, stream: true, messages },
          sim: { ...sim, cacheReadTokens: 20 },
        });
        break;
      case 2:
        calls.push({
          user,
          feature,
          path: '/v1/chat/completions',
          body: { model: 'gpt-4o', max_tokens: 200, messages },
          sim,
        });
        break;
      case 4:
        calls.push({
          user,
          feature,
          path: '/v1/embeddings',
          body: { model: 'text-embedding-3-small', input: prompt(i) },
        });
        break;
      default:
        calls.push({
          user,
          feature,
          path: '/v1/chat/completions',
          body: { model: 'llama-3.1-8b-instant', stream: true, messages },
          sim: { ...sim, report: 'groq' },
        });
    }
  }
  return calls;
}

/**
 * The failures production sees (a rate limit, an overloaded provider, a cut stream, a caller
 * who goes away) and a model without a known price.
 */
export const EDGE_CALLS: TrafficCall[] = [
  {
    user: 'dave',
    feature: 'search',
    path: '/v1/chat/completions',
    body: { model: 'acme-internal-7b', stream: true, messages: [{ role: 'user', content: prompt(9) }] },
    sim: { msPerToken: 1, outputTokens: 12 },
  },
  {
    user: 'bob',
    feature: 'triage',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    sim: { fault: 'rate_limit', retryAfterS: 2 },
  },
  {
    user: 'alice',
    feature: 'search',
    path: '/v1/messages',
    headers: ANTHROPIC,
    body: { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
    sim: { fault: 'overloaded' },
  },
  {
    user: 'carol',
    feature: 'summarize',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt(3) }] },
    sim: { fault: 'cut_stream', faultAfterTokens: 4, msPerToken: 1 },
  },
  {
    user: 'alice',
    feature: 'triage',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt(1) }] },
    sim: { msPerToken: 5, outputTokens: 60 },
    cancelAfterBytes: 400,
  },
];

type Meter = ReturnType<typeof createMeter>;

/** Sends the calls through the meter, a few at a time; failures are outcomes, not errors. */
export async function sendTraffic(meter: Meter, sim: Simulator, calls: TrafficCall[], concurrency = 3) {
  await sendDemoCalls(meter, sim.url, calls, concurrency, {
    project: 'support',
    apiKey: 'sk-traffic-not-a-real-key',
  });
  await meter.flush();
}

export interface MeteredServer {
  base: string;
  port: number;
  token: string;
  meter: Meter;
  sim: Simulator;
  prometheus: PrometheusMetrics;
  /** fetch against the server, with the bearer token unless `token: null`. */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** JSON from the API (with the token), failing loudly on a non-2xx. */
  json<T = unknown>(path: string, init?: RequestInit): Promise<T>;
  close(): Promise<void>;
}

/** Simulator, meter on a temp SQLite file with Prometheus metrics, and the app on loopback. */
export async function startMeteredServer(options: { token?: string } = {}): Promise<MeteredServer> {
  const token = options.token ?? 'dashboard-token-7c1e';
  const dir = mkdtempSync(join(tmpdir(), 'llm-meter-traffic-'));
  const sim = await startSimulator();
  const prometheus = createPrometheusMetrics();
  const meter = createMeter({
    database: join(dir, 'usage.db'),
    prices: TRAFFIC_PRICES,
    meterProvider: prometheus.meterProvider,
    webhookPollIntervalMs: 0,
  });
  const stopObserving = prometheus.observe(meter);
  const store = meter.store;
  if (!store) throw new Error('the meter has no store');
  const app = createServer({ store, budgets: meter.budgets }, { apiToken: token, metrics: prometheus });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const doFetch: MeteredServer['fetch'] = (path, init = {}) => {
    const { token: given = token, headers, ...rest } = init;
    return fetch(base + path, {
      ...rest,
      headers: { ...(given === null ? {} : { authorization: `Bearer ${given}` }), ...(headers as object) },
    });
  };
  return {
    base,
    port,
    token,
    meter,
    sim,
    prometheus,
    fetch: doFetch,
    async json(path, init) {
      const res = await doFetch(path, init);
      if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      stopObserving();
      await meter.shutdown();
      await prometheus.shutdown();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POST /v1/budgets, returning the created budget. */
export async function createBudget(api: MeteredServer, body: Record<string, unknown>) {
  return api.json<{ id: string; name: string }>('/v1/budgets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * A metered server with these budgets, after `calls` went through its meter: what the tests of
 * /metrics, the dashboards and Prometheus look at.
 */
export async function startServerWithTraffic(
  budgets: Record<string, unknown>[],
  calls: TrafficCall[] = [...trafficCalls(18), ...EDGE_CALLS],
): Promise<MeteredServer> {
  const api = await startMeteredServer();
  try {
    for (const budget of budgets) await createBudget(api, budget);
    await sendTraffic(api.meter, api.sim, calls);
    return api;
  } catch (error) {
    await api.close();
    throw error;
  }
}

export interface GatewayWithTraffic {
  /** The gateway's metrics port (`GET /metrics`). */
  metricsPort: number;
  metricsUrl: string;
  close(): Promise<void>;
}

/**
 * An llm-meter gateway with its circuit breaker and rate limiter, its metrics served on a port
 * of their own as `llm-meter proxy --metrics-port` does, after traffic that leaves a series in
 * every gateway metric: calls for two models, two server errors that open one model's circuit,
 * and a call that the open circuit refuses (outcome blocked).
 */
export async function startGatewayWithTraffic(): Promise<GatewayWithTraffic> {
  const { startProxy } = await import('../../src/proxy/index.js');
  const { serveMetrics } = await import('../../src/telemetry/prometheus.js');
  const sim = await startSimulator();
  const prometheus = createPrometheusMetrics();
  const meter = createMeter({
    database: false,
    prices: TRAFFIC_PRICES,
    meterProvider: prometheus.meterProvider,
  });
  const gw = await startProxy({
    port: 0,
    upstreams: { openai: sim.url },
    meter,
    circuitBreaker: { failureThreshold: 2, openMs: 600_000 },
    rateLimiter: {},
  });
  const stop = [prometheus.observe(meter), prometheus.observe({ gateway: gw })];
  const server = await serveMetrics(prometheus, 0, '127.0.0.1');
  const chat = (model: string) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
    }).then((res) => res.arrayBuffer());
  for (const model of ['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o']) await chat(model);
  sim.enqueue({ fault: 'server_error' }, { fault: 'server_error' });
  for (let i = 0; i < 3; i++) await chat('gpt-4o');
  await meter.flush();
  const metricsPort = (server.address() as AddressInfo).port;
  return {
    metricsPort,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of stop) s();
      await gw.close();
      await meter.shutdown();
      await prometheus.shutdown();
      await sim.close();
    },
  };
}
