/**
 * The gateway's own state on /metrics: requests, calls answered locally, each circuit of the
 * circuit breaker and each rate-limit budget, beside the GenAI metrics of the calls it meters.
 * First through the library (startProxy + createPrometheusMetrics), then through the CLI
 * (`llm-meter proxy --metrics-port`), which serves them on a port of their own.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { startProxy } from '../../src/proxy/index.js';
import { createPrometheusMetrics, serveMetrics } from '../../src/telemetry/prometheus.js';
import { buildOnce, DIST } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { parseExposition } from '../helpers/exposition.js';
import { chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { useSimulator } from '../helpers/simulator.js';

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

/** The built CLI to its end: for the refusals, which bind nothing and exit at once. */
function runCli(args: string[]) {
  return spawnSync(process.execPath, [join(DIST, 'cli/main.js'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/**
 * Starts the built CLI and resolves with the lines it printed once `ready(lines, stderr)` holds
 * (checked on output to either stream: the two pipes are read in no particular order).
 */
function startCli(
  args: string[],
  ready: (lines: string[], stderr: string) => boolean,
): Promise<{ child: ChildProcess; lines: string[]; stderr: () => string }> {
  const child = spawn(process.execPath, [join(DIST, 'cli/main.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  return new Promise((resolve, reject) => {
    const check = () => ready(lines, stderr) && resolve({ child, lines, stderr: () => stderr });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      check();
    });
    child.stdout!.on('data', (d: Buffer) => {
      lines.push(...d.toString().split('\n').filter(Boolean));
      check();
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

/** A raw GET to 127.0.0.1 with exactly these headers (Host included). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const { port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: pathname, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveMetrics: who may read the metrics port', () => {
  const opened: Server[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await new Promise((r) => s.close(r));
  });
  async function serve(host: string, options?: Parameters<typeof serveMetrics>[3]) {
    const prometheus = createPrometheusMetrics();
    const server = await serveMetrics(prometheus, 0, host, options);
    opened.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }
  async function refusal(host: string, options?: Parameters<typeof serveMetrics>[3]) {
    try {
      await serve(host, options);
      return null;
    } catch (error) {
      return error as Error;
    }
  }

  it.each(['0.0.0.0', '::'])('host %j without a token throws, naming the options', async (host) => {
    const error = await refusal(host);
    expect(error, 'refused').toMatchObject({ name: 'InvalidOptionError' });
    expect(error!.message).toMatch(/`host`/);
    expect(error!.message).toMatch(/`token`/);
    expect(error!.message).toMatch(/`insecureNoAuth: true`/);
  });

  it('an empty token is refused', async () => {
    expect((await refusal('127.0.0.1', { token: ' ' }))?.message).toMatch(/`token`/);
  });

  it('without a token: loopback Host names only (DNS rebinding), and no cross-site page', async () => {
    const url = await serve('127.0.0.1');
    const port = new URL(url).port;
    for (const host of [
      'attacker.example',
      `attacker.example:${port}`,
      `10.0.0.1:${port}`,
      '127.0.0.1.nip.io',
    ]) {
      const answer = await get(url, { host });
      expect(answer.status, host).toBe(421);
      expect(answer.text, 'no metrics, and the Host is not quoted').not.toMatch(/llm_meter|attacker|nip\.io/);
    }
    const crossSite = await get(url, { host: `127.0.0.1:${port}`, origin: 'http://attacker.example' });
    expect(crossSite.status).toBe(403);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      expect((await get(url, { host })).status, host).toBe(200);
    }
  });

  it('with a token: bearer auth on every path, any Host', async () => {
    const url = await serve('0.0.0.0', { token: 'metrics-token-3c1d' });
    expect((await get(url, { host: 'prometheus-target.internal' })).status).toBe(401);
    expect((await get(url, { host: 'x', authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await get(url, {
      host: 'prometheus-target.internal',
      authorization: 'Bearer metrics-token-3c1d',
    });
    expect(ok.status).toBe(200);
    expect(ok.text).toMatch(/target_info/);
    expect((await get(new URL('/other', url).href, { host: 'x' })).status, 'no route probing').toBe(401);
  });

  it('insecureNoAuth binds beyond loopback with a warning; IP-literal Hosts only', async () => {
    const warnings: string[] = [];
    const url = await serve('0.0.0.0', { insecureNoAuth: true, logger: (m) => warnings.push(m) });
    expect(warnings.join('\n')).toMatch(/WARNING.*0\.0\.0\.0/);
    expect((await get(url, { host: '192.0.2.7:9464' })).status).toBe(200);
    expect((await get(url, { host: 'attacker.example' })).status).toBe(421);
  });
});

describe('llm-meter proxy --metrics-host', () => {
  it('0.0.0.0 without a metrics token exits 2 naming --metrics-host, --metrics-token and --insecure-no-auth', () => {
    buildOnce();
    const r = runCli([
      'proxy',
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--metrics-host',
      '0.0.0.0',
      '--db',
      newDb(),
    ]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--metrics-host/);
    expect(r.stderr).toMatch(/--metrics-token/);
    expect(r.stderr).toMatch(/--insecure-no-auth/);
    expect(r.stdout).not.toMatch(/proxy on|metrics on/);
  });

  it('--metrics-token: every interface, behind the token', async () => {
    buildOnce();
    const { lines } = await startCli(
      [
        'proxy',
        '--port',
        '0',
        '--metrics-port',
        '0',
        '--metrics-host',
        '0.0.0.0',
        '--metrics-token',
        'cli-metrics-token-9b2e',
        '--upstream',
        `openai=${file.sim.url}`,
        '--db',
        newDb(),
      ],
      (l) => l.some((line) => line.startsWith('metrics on ')),
    );
    const port = new URL(/metrics on (\S+)/.exec(lines.join('\n'))![1]!).port;
    const url = `http://127.0.0.1:${port}/metrics`;
    expect((await get(url, { host: `127.0.0.1:${port}` })).status).toBe(401);
    const ok = await get(url, { host: `127.0.0.1:${port}`, authorization: 'Bearer cli-metrics-token-9b2e' });
    expect(ok.status).toBe(200);
  });

  it('on loopback without a token, a rebound Host is refused', async () => {
    buildOnce();
    const { lines } = await startCli(
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
      ],
      (l) => l.some((line) => line.startsWith('metrics on ')),
    );
    const url = /metrics on (\S+)/.exec(lines.join('\n'))![1]!;
    expect((await get(url, { host: 'attacker.example' })).status).toBe(421);
    expect((await get(url, { host: new URL(url).host })).status).toBe(200);
  });

  it('--insecure-no-auth binds every interface without a token, and warns on stderr', async () => {
    buildOnce();
    const { lines, stderr } = await startCli(
      [
        'proxy',
        '--port',
        '0',
        '--metrics-port',
        '0',
        '--metrics-host',
        '0.0.0.0',
        '--insecure-no-auth',
        '--upstream',
        `openai=${file.sim.url}`,
        '--db',
        newDb(),
      ],
      (l, err) => l.some((line) => line.startsWith('metrics on ')) && /WARNING.*metrics/.test(err),
    );
    expect(stderr()).toMatch(/WARNING.*metrics/);
    const port = new URL(/metrics on (\S+)/.exec(lines.join('\n'))![1]!).port;
    expect((await get(`http://127.0.0.1:${port}/metrics`, { host: `127.0.0.1:${port}` })).status).toBe(200);
  });
});
