/**
 * API keys never leave the caller's request: after a representative set of calls (OpenAI bearer,
 * Anthropic x-api-key, Gemini ?key= and x-goog-api-key, Azure api-key, a gateway's bearer), with
 * content capture on, errors that echo the key back, a throwing hook and a logger, no key (nor
 * its URL-encoded or base64 form, nor a 16-character slice of it) appears in the SQLite files
 * (.db, -wal, -shm bytes), the exported spans, the metrics (OTLP data and the Prometheus text),
 * the logger's output, the records handed to hooks, the HTTP API's answers, or the CLI's output.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { createServer } from '../../src/server/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { createPrometheusMetrics } from '../../src/telemetry/prometheus.js';
import { buildOnce } from '../fixtures/build.js';
import { useTempDir } from '../fixtures/store-tmp.js';
import { createTestTelemetry } from '../helpers/otel.js';
import { type ReplayServer, startReplay } from '../helpers/replay.js';

const key = (prefix: string) => `${prefix}${randomBytes(18).toString('hex')}`;
const KEYS = {
  openai: key('sk-proj-LEAKTEST'),
  anthropic: key('sk-ant-api03-LEAKTEST'),
  geminiQuery: key('AIzaLEAKTESTq'),
  geminiHeader: key('AIzaLEAKTESTh'),
  azure: key('azLEAKTEST'),
  gateway: key('sk-or-v1-LEAKTEST'),
  echoed: key('sk-echo-LEAKTEST'),
};

/** Every form in which a key could be written somewhere. */
function needles(): [string, string][] {
  return Object.entries(KEYS).flatMap(([name, k]) => [
    [name, k],
    [`${name} (slice)`, k.slice(-20, -4)],
    [`${name} (url-encoded)`, encodeURIComponent(k)],
    [`${name} (base64)`, Buffer.from(k).toString('base64').slice(4, 24)],
  ]);
}

function expectNoKeys(where: string, haystack: string | Buffer): void {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  expect(text.length, `${where} is not empty`).toBeGreaterThan(0);
  for (const [name, needle] of needles()) {
    expect(text.includes(needle), `${name} key found in ${where}`).toBe(false);
  }
}

const newDir = useTempDir('llm-meter-secrets-');
let sim: Simulator;
let echo: ReplayServer;
let dbPath = '';
const logged: string[] = [];
const records: CallRecord[] = [];
const tel = createTestTelemetry();
const prometheus = createPrometheusMetrics();
let meter: ReturnType<typeof createMeter>;

/**
 * An upstream that quotes the credential it refused, in full, in its error message and a
 * header (OpenAI quotes a masked one: "Incorrect API key provided: sk-abc***xyz").
 */
function echoKey(req: IncomingMessage, res: ServerResponse): void {
  const sent = String(req.headers.authorization ?? req.headers['x-api-key'] ?? '');
  res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer error="${sent}"` });
  res.end(
    JSON.stringify({
      error: {
        message: `Incorrect API key provided: ${sent}.`,
        type: 'invalid_request_error',
        code: 'invalid_api_key',
      },
    }),
  );
}

/** Sends real provider URLs (hosts the detection keys on) to the simulator, path and query kept. */
function toSimulator(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const target = url.hostname === 'echo.example' ? echo.url : sim.url;
  return fetch(target + url.pathname + url.search, init);
}

const chat = (stream: boolean) =>
  JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hi.' }],
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });

interface Call {
  name: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  sim?: Record<string, unknown>;
}

const gemini = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Say hi.' }] }] });
const anthropic = (stream: boolean) =>
  JSON.stringify({
    model: 'claude-sonnet-4-5',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Hi' }],
    stream,
  });

const CALLS: Call[] = [
  {
    name: 'OpenAI bearer',
    url: 'https://api.openai.com/v1/chat/completions',
    headers: { authorization: `Bearer ${KEYS.openai}` },
    body: chat(false),
  },
  {
    name: 'OpenAI bearer, streamed',
    url: 'https://api.openai.com/v1/chat/completions',
    headers: { authorization: `Bearer ${KEYS.openai}` },
    body: chat(true),
  },
  {
    name: 'OpenAI bearer, refused (401)',
    url: 'https://api.openai.com/v1/chat/completions',
    headers: { authorization: `Bearer ${KEYS.openai}` },
    body: chat(false),
    sim: { fault: 'auth' },
  },
  {
    name: 'Anthropic x-api-key',
    url: 'https://api.anthropic.com/v1/messages',
    headers: { 'x-api-key': KEYS.anthropic, 'anthropic-version': '2023-06-01' },
    body: anthropic(false),
  },
  {
    name: 'Anthropic x-api-key, streamed',
    url: 'https://api.anthropic.com/v1/messages',
    headers: { 'x-api-key': KEYS.anthropic, 'anthropic-version': '2023-06-01' },
    body: anthropic(true),
  },
  {
    name: 'Gemini ?key=',
    url: `https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent?key=${KEYS.geminiQuery}`,
    headers: {},
    body: gemini,
  },
  {
    name: 'Gemini ?key=, streamed (SSE)',
    url: `https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=${KEYS.geminiQuery}`,
    headers: {},
    body: gemini,
  },
  {
    name: 'Gemini x-goog-api-key, streamed (JSON array)',
    url: 'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent',
    headers: { 'x-goog-api-key': KEYS.geminiHeader },
    body: gemini,
  },
  {
    name: 'Azure api-key',
    url: 'https://contoso.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21',
    headers: { 'api-key': KEYS.azure },
    body: chat(false),
  },
  {
    name: 'gateway bearer (OpenRouter style)',
    url: 'https://openrouter.ai/api/v1/chat/completions',
    headers: { authorization: `Bearer ${KEYS.gateway}` },
    body: chat(true),
  },
  {
    name: 'upstream echoing the bearer in its 401',
    url: 'https://echo.example/v1/chat/completions',
    headers: { authorization: `Bearer ${KEYS.echoed}` },
    body: chat(false),
  },
  {
    name: 'upstream echoing x-api-key in its 401',
    url: 'https://echo.example/v1/messages',
    headers: { 'x-api-key': KEYS.echoed, 'anthropic-version': '2023-06-01' },
    body: anthropic(false),
  },
];

beforeAll(async () => {
  buildOnce();
  sim = await startSimulator({ defaults: { outputTokens: 6 } });
  echo = await startReplay({ '/v1/chat/completions': echoKey, '/v1/messages': echoKey });
  dbPath = join(newDir(), 'usage.db');
  meter = createMeter({
    database: dbPath,
    fetch: toSimulator,
    captureContent: true,
    apiKeyHashSalt: 'salt',
    tracerProvider: tel.tracerProvider,
    meterProvider: prometheus.meterProvider,
    logger: (message, error) => logged.push(`${message} ${inspect(error, { depth: 6 })}`),
    onRecord: (record) => {
      records.push(record);
      // A careless hook that throws with the whole record in its message: whatever is logged of
      // it must be free of keys too.
      throw new Error(`hook failed on ${JSON.stringify(record)}`);
    },
  });
  prometheus.observe(meter);
  for (const call of CALLS) {
    const response = await meter.run({ user: 'alice', project: 'secrets' }, () =>
      meter.fetch(call.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(call.sim ? { 'x-sim-options': JSON.stringify(call.sim) } : {}),
          ...call.headers,
        },
        body: call.body,
      }),
    );
    await response.arrayBuffer();
  }
  // A call to a port nobody listens on: the network error goes to the caller, the record says so.
  await meter
    .wrapFetch((_input, init) => fetch('http://127.0.0.1:9/v1/chat/completions', init))(
      `https://api.openai.com/v1/chat/completions?key=${KEYS.geminiQuery}`,
      { method: 'POST', headers: { authorization: `Bearer ${KEYS.openai}` }, body: chat(false) },
    )
    .catch(() => undefined);
  await meter.flush();
});

afterAll(async () => {
  await meter.shutdown();
  await tel.shutdown();
  await prometheus.shutdown();
  await echo.close();
  await sim.close();
});

describe('no API key anywhere', () => {
  it('every call was metered and recorded (the haystacks are real)', () => {
    expect(records).toHaveLength(CALLS.length + 1);
    expect(meter.store!.stats()).toMatchObject({ written: CALLS.length + 1, failed: 0, dropped: 0 });
    expect(records.filter((r) => r.outcome === 'ok').length).toBeGreaterThanOrEqual(8);
    expect(records.filter((r) => r.httpStatus === 401)).toHaveLength(3);
    expect(
      records.some((r) => r.attribution.apiKeyHash),
      'keys are hashed with the salt',
    ).toBe(true);
    expect(logged.length, 'the hook failures were logged').toBeGreaterThanOrEqual(CALLS.length);
  });

  it('the SQLite files (.db, -wal, -shm), while open and after shutdown', async () => {
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(dbPath + suffix))
        expectNoKeys(`usage.db${suffix} (open)`, readFileSync(dbPath + suffix));
    }
    const wal = readFileSync(`${dbPath}-wal`);
    expect(wal.includes('Say hi.'), 'captured content is in the WAL: the bytes were really read').toBe(true);
  });

  it('the records handed to hooks, and the logger', () => {
    expectNoKeys('records', JSON.stringify(records));
    expectNoKeys('logger', logged.join('\n'));
  });

  it('the spans: names, attributes, events, status, resource, links', () => {
    const spans = tel.spans();
    expect(spans.length).toBeGreaterThanOrEqual(CALLS.length);
    expectNoKeys(
      'spans',
      JSON.stringify(
        spans.map((s) => ({
          name: s.name,
          attributes: s.attributes,
          events: s.events,
          status: s.status,
          links: s.links,
          resource: s.resource.attributes,
        })),
      ),
    );
  });

  it('the metrics (Prometheus exposition)', async () => {
    const text = await prometheus.scrape();
    expect(text).toMatch(/gen_ai_client_token_usage/);
    expectNoKeys('/metrics', text);
  });

  it('the HTTP API: events (JSON and CSV), summary by every dimension, budgets', async () => {
    await meter.budgets!.create({ name: 'cap', period: 'day', limit_usd: 10 });
    const server = createServer(meter, { apiToken: 'api-token-0123', metrics: prometheus }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (const path of [
        '/v1/usage/events?limit=1000',
        '/v1/usage/events?format=csv',
        '/v1/usage/summary?group_by=model,provider,user,project,feature,operation,outcome',
        '/v1/usage/timeseries?group_by=model&interval=day',
        '/v1/budgets',
        '/v1/alerts',
        '/metrics',
      ]) {
        const res = await fetch(base + path, { headers: { authorization: 'Bearer api-token-0123' } });
        expect(res.status, path).toBe(200);
        expectNoKeys(path, await res.text());
      }
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('the CLI (report as a table and as JSON), and the files after shutdown', async () => {
    await meter.shutdown();
    const cli = join(process.cwd(), 'dist/cli/main.js');
    for (const args of [
      ['report', '--db', dbPath, '--group-by', 'provider,model,user'],
      ['report', '--db', dbPath, '--group-by', 'model,day', '--json'],
      ['budgets', 'list', '--db', dbPath],
    ]) {
      const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
      expect(run.status, run.stderr).toBe(0);
      expectNoKeys(`llm-meter ${args[0]} ${args.at(-1)}`, run.stdout + run.stderr);
    }
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(dbPath + suffix))
        expectNoKeys(`usage.db${suffix} (closed)`, readFileSync(dbPath + suffix));
    }
  });
});
