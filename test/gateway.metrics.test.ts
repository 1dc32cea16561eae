/**
 * The gateway's own state on /metrics: requests, calls answered locally, each circuit of the
 * circuit breaker and each rate-limit budget, beside the GenAI metrics of the calls it meters.
 * First through the library (startProxy + createPrometheusMetrics), then through the CLI
 * (`llm-meter proxy --metrics-port`), which serves them on a port of their own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { createMeter } from '../src/index.js';
import { startProxy } from '../src/proxy/index.js';
import { createPrometheusMetrics } from '../src/telemetry/prometheus.js';
import { buildOnce, DIST } from './fixtures/build.js';
import { useTempDb } from './fixtures/store-tmp.js';
import { parseExposition } from './helpers/exposition.js';
import { chatMessages, TEST_PRICES } from './helpers/harness.js';
import { useSimulator } from './helpers/simulator.js';

const file = useSimulator();
const newDb = useTempDb();
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

describe('gateway state on /metrics', () => {
  it('requests, an open circuit per provider/model and the provider-reported rate-limit budget', async () => {
    const prometheus = createPrometheusMetrics();
    const meter = createMeter({
      database: false,
      prices: TEST_PRICES,
      meterProvider: prometheus.meterProvider,
    });
    const gw = await startProxy({
      port: 0,
      upstreams: { openai: file.sim.url },
      meter,
      circuitBreaker: { failureThreshold: 2, openMs: 60_000 },
      rateLimiter: {},
    });
    file.closeAfterTest(gw);
    const stop = [prometheus.observe(meter), prometheus.observe({ gateway: gw })];
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const ask = (model: string) =>
      openai.chat.completions.create({ model, messages: chatMessages }).then(
        () => 'ok',
        (e: { status?: number }) => e.status,
      );

    await ask('gpt-4o-mini');
    file.sim.enqueue({ fault: 'server_error' }, { fault: 'server_error' });
    expect([await ask('gpt-4o'), await ask('gpt-4o'), await ask('gpt-4o')]).toEqual([500, 500, 503]);
    expect(file.sim.calls, 'the open circuit answered the third call itself').toHaveLength(3);
    await meter.flush();

    const m = parseExposition(await prometheus.scrape());
    expect(m.sum('llm_meter_gateway_requests_total')).toBe(4);
    expect(m.sum('llm_meter_gateway_in_flight')).toBe(0);
    const circuits = Object.fromEntries(
      m.find('llm_meter_circuit_state').map((s) => [s.labels['llm_meter_circuit'], s.value]),
    );
    expect(circuits).toMatchObject({ 'openai_compatible/gpt-4o': 2, 'openai_compatible/gpt-4o-mini': 0 });
    const budget = m.find('llm_meter_rate_limiter_remaining_requests');
    expect(budget.length, 'the limiter read the simulator rate-limit headers').toBeGreaterThan(0);
    expect(budget[0]!.value).toBeGreaterThan(0);
    // The blocked call is a call of the meter too, recorded as blocked.
    expect(m.sum('llm_meter_calls_total', { llm_meter_outcome: 'blocked' })).toBe(1);
    for (const s of stop) s();
    await meter.shutdown();
    await prometheus.shutdown();
  });
});

/** Starts the built CLI and resolves with the lines it printed once `ready(lines)` holds. */
function startCli(
  args: string[],
  ready: (lines: string[]) => boolean,
): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, [join(DIST, 'cli/main.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      lines.push(...d.toString().split('\n').filter(Boolean));
      if (ready(lines)) resolve({ child, lines });
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}${lines.join('\n')}`)));
  });
}

describe('llm-meter proxy --metrics-port', () => {
  it('serves GET /metrics on its own loopback port, and nothing else there; SIGTERM exits cleanly', async () => {
    buildOnce();
    const { child, lines } = await startCli(
      [
        'proxy',
        '--port',
        '0',
        '--metrics-port',
        '0',
        '--upstream',
        `openai=${file.sim.url}`,
        '--db',
        newDb(),
        '--circuit-breaker',
      ],
      (l) => l.some((line) => line.startsWith('metrics on ')),
    );
    const proxyUrl = /llm-meter proxy on (\S+)/.exec(lines.join('\n'))![1]!;
    const metricsUrl = /metrics on (\S+)/.exec(lines.join('\n'))![1]!;
    expect(new URL(metricsUrl).hostname).toBe('127.0.0.1');
    expect(new URL(metricsUrl).port).not.toBe(new URL(proxyUrl).port);

    const openai = new OpenAI({ baseURL: `${proxyUrl}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });

    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const m = parseExposition(await res.text());
    expect(m.sum('llm_meter_gateway_requests_total')).toBe(1);
    expect(m.sum('gen_ai_client_token_usage_count')).toBe(2);
    expect(
      m.find('llm_meter_circuit_state', { llm_meter_circuit: 'openai_compatible/gpt-4o-mini' }),
    ).toHaveLength(1);
    expect(m.names.has('llm_meter_store_written_total')).toBe(true);

    const other = await fetch(new URL('/v1/usage/summary', metricsUrl));
    expect(other.status).toBe(404);
    const proxyMetrics = await fetch(`${proxyUrl}/metrics`);
    expect(proxyMetrics.status, 'the gateway port does not serve metrics').not.toBe(200);

    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
