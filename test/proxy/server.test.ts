import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import type { ProxyOptions } from '../../src/proxy/types.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { caught, chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { assertSpan, createTestTelemetry } from '../helpers/otel.js';

/**
 * The gateway with real parts: the official SDKs pointed at it (base URL = the gateway), the
 * simulator behind it, a real SQLite file, spans in an in-memory exporter.
 */

const newDb = useTempDb();
const CLIENT_KEY = 'sk-client-secret-0123456789abcdef';

let sim: Simulator;
let gw: RunningProxy | null = null;
let tel: ReturnType<typeof createTestTelemetry>;
let records: CallRecord[];
let meter: ReturnType<typeof createMeter>;

beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(async () => {
  await sim.close();
});
afterEach(async () => {
  await gw?.close();
  gw = null;
  await meter?.shutdown();
  await tel?.shutdown();
  sim.reset();
});

async function gateway(options: Partial<ProxyOptions> = {}, database: string | false = false) {
  tel = createTestTelemetry();
  records = [];
  meter = createMeter({
    database,
    prices: TEST_PRICES,
    tracerProvider: tel.tracerProvider,
    meterProvider: tel.meterProvider,
    onRecord: (r) => records.push(r),
    webhookPollIntervalMs: 0,
  });
  gw = await startProxy({
    port: 0,
    upstreams: { openai: sim.url, anthropic: sim.url },
    meter,
    ...options,
  });
  return gw;
}

function openaiClient(baseURL: string, options: { apiKey?: string; headers?: Record<string, string> } = {}) {
  return new OpenAI({
    baseURL,
    apiKey: options.apiKey ?? CLIENT_KEY,
    maxRetries: 0,
    defaultHeaders: options.headers ?? {},
  });
}

/** The key a request carried: this Anthropic SDK sends `Authorization: Bearer`, others `x-api-key`. */
function credential(headers: Record<string, string>): string | undefined {
  return headers['x-api-key'] ?? headers.authorization?.replace(/^Bearer /, '');
}

/** A raw HTTP/1.1 POST (fetch refuses to send hop-by-hop headers at all). */
function rawPost(url: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = httpRequest(url, { method: 'POST', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    },
  );
}

/** Polls until `done()` holds (no timing asserted: vitest's timeout bounds it). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

/** Records after everything in flight is assembled. */
async function settled(): Promise<CallRecord[]> {
  await meter.flush();
  return records;
}

describe('gateway: the official openai client pointed at it', () => {
  it('non-streaming: same answer, metered, attribution from headers never forwarded, key untouched', async () => {
    const { url } = await gateway();
    sim.enqueue({ outputTokens: 7 });
    const openai = openaiClient(`${url}/v1`, {
      headers: {
        'x-llm-meter-user': 'alice',
        'x-llm-meter-project': 'support',
        'x-llm-meter-feature': 'triage',
        'x-llm-meter-tags': 'env=prod,team=ml%20ops',
      },
    });
    const res = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      max_tokens: 50,
    });
    const truth = sim.calls[0]!;
    expect(res.choices[0]!.message.content?.trim().split(' ')).toHaveLength(7);
    expect(res.usage?.prompt_tokens).toBe(truth.inputTokens);
    expect(truth.headers.authorization, 'the client key reaches the provider untouched').toBe(
      `Bearer ${CLIENT_KEY}`,
    );
    expect(Object.keys(truth.headers).filter((h) => h.startsWith('x-llm-meter-'))).toEqual([]);
    const [record] = await settled();
    expect(record).toMatchObject({
      outcome: 'ok',
      requestModel: 'gpt-4o-mini',
      httpStatus: 200,
      attribution: {
        user: 'alice',
        project: 'support',
        feature: 'triage',
        tags: { env: 'prod', team: 'ml ops' },
      },
      usage: { inputTokens: truth.inputTokens, outputTokens: 7, source: 'provider' },
    });
    assertSpan(tel.llmSpans()[0], {
      name: 'chat gpt-4o-mini',
      attributes: {
        'llm_meter.user': 'alice',
        'gen_ai.usage.output_tokens': 7,
        'server.address': '127.0.0.1',
      },
    });
  });

  it('the upstream by path prefix, tags as JSON', async () => {
    const { url } = await gateway();
    const openai = openaiClient(`${url}/openai/v1`, {
      headers: { 'x-llm-meter-tags': '{"env":"staging","n":3}' },
    });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
    expect(sim.calls[0]!.path).toBe('/v1/chat/completions');
    const [record] = await settled();
    expect(record!.attribution.tags).toEqual({ env: 'staging', n: '3' });
  });

  it('streaming: chunks reach the client while the provider is still generating', async () => {
    const { url } = await gateway();
    sim.enqueue({ outputTokens: 12, msPerToken: 40 });
    const openai = openaiClient(`${url}/v1`);
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      stream: true,
    });
    let text = '';
    let simEndedAtFirstDelta: number | null | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.content ?? '';
      if (delta && simEndedAtFirstDelta === undefined) simEndedAtFirstDelta = sim.calls[0]!.endedAt;
      text += delta;
      expect('usage' in chunk, 'the usage chunk the meter asked for stays hidden').toBe(false);
    }
    expect(simEndedAtFirstDelta, 'first delta forwarded before the provider finished').toBeNull();
    expect(text.trim().split(' ')).toHaveLength(12);
    const [record] = await settled();
    expect(record).toMatchObject({
      outcome: 'ok',
      request: { stream: true },
      usage: { outputTokens: 12, source: 'provider' },
    });
    expect(record!.timing.timeToFirstTokenMs).not.toBeNull();
  });

  it('the anthropic client by path shape (/v1/messages)', async () => {
    const { url } = await gateway();
    const anthropic = new Anthropic({ baseURL: url, apiKey: 'sk-ant-client-key', maxRetries: 0 });
    const msg = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(msg.type).toBe('message');
    expect(credential(sim.calls[0]!.headers)).toBe('sk-ant-client-key');
    const [record] = await settled();
    expect(record).toMatchObject({ provider: 'anthropic', outcome: 'ok' });
  });

  it('upstream errors are forwarded as the provider sent them', async () => {
    const { url } = await gateway();
    sim.enqueue({ fault: 'rate_limit', retryAfterS: 2 });
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(res.headers.get('retry-after-ms')).toBe('2000');
    expect(res.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('rate_limit_exceeded');
    expect(body.error.message).toMatch(/^Rate limit reached for gpt-4o-mini/);
    const [record] = await settled();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'rate_limited',
      httpStatus: 429,
      retryAfterMs: 2000,
    });
  });

  it('an unknown path answers 404 in the provider shape and reaches nobody', async () => {
    const { url } = await gateway();
    const res = await fetch(`${url}/nowhere/v1/chat`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('not_found_error');
    expect(sim.calls).toHaveLength(0);
  });
});

describe('gateway: client disconnect', () => {
  it('aborts the upstream call at once; the record says cancelled', async () => {
    const { url } = await gateway();
    sim.enqueue({ outputTokens: 400, msPerToken: 15 });
    const controller = new AbortController();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/"content":"[^"]+"/g) ?? []).length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const truth = await sim.waitForCall();
    expect(truth.clientClosed, 'the simulator saw its client close').toBe(true);
    expect(truth.outcome).toBe('client_closed');
    expect(truth.outputTokens).toBeLessThan(400);
    await until(() => records.length === 1);
    const [record] = await settled();
    expect(record).toMatchObject({ outcome: 'cancelled', errorType: null, httpStatus: 200 });
    expect(gw!.stats().inFlight).toBe(0);
  });
});

describe('gateway: keys', () => {
  it('API keys never reach the database file or the spans', async () => {
    const db = newDb();
    const { url } = await gateway({}, db);
    const openai = openaiClient(`${url}/v1`);
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      stream: true,
    });
    for await (const _ of stream) {
      // drain
    }
    sim.enqueue({ fault: 'auth' });
    await caught(() => openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }));
    await settled();
    expect(records).toHaveLength(3);
    await gw!.close();
    gw = null;
    await meter.shutdown();
    const files = [db, `${db}-wal`, `${db}-shm`];
    let bytes = 0;
    for (const file of files) {
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        continue;
      }
      bytes += data.length;
      expect(data.includes(CLIENT_KEY), `${file} holds no key`).toBe(false);
      expect(data.includes('sk-client-secret'), `${file} holds no key prefix`).toBe(false);
    }
    expect(bytes, 'the database was written').toBeGreaterThan(0);
    const spans = JSON.stringify(
      tel.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, links: s.links })),
    );
    expect(spans).toContain('gpt-4o-mini');
    expect(spans.includes(CLIENT_KEY)).toBe(false);
    expect(spans.includes('sk-client-secret')).toBe(false);
  });

  const KEYS = {
    lmk_bob_0123456789abcdef: {
      user: 'bob',
      project: 'search',
      tags: { tier: 'gold' },
      providerKeys: { openai: 'sk-upstream-openai-key', anthropic: 'sk-ant-upstream-key' },
    },
    lmk_carol_0123456789abcd: { user: 'carol', providerKeys: { anthropic: 'sk-ant-carol' } },
  };

  it('requireKey: a gateway key maps to its user and the provider key the gateway holds', async () => {
    const { url } = await gateway({ requireKey: true, keys: KEYS });
    const openai = openaiClient(`${url}/v1`, {
      apiKey: 'lmk_bob_0123456789abcdef',
      headers: { 'x-llm-meter-user': 'mallory', 'x-llm-meter-feature': 'rank' },
    });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
    expect(sim.calls[0]!.headers.authorization).toBe('Bearer sk-upstream-openai-key');
    const anthropic = new Anthropic({ baseURL: url, apiKey: 'lmk_bob_0123456789abcdef', maxRetries: 0 });
    await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(credential(sim.calls[1]!.headers)).toBe('sk-ant-upstream-key');
    const [first] = await settled();
    expect(first!.attribution, "the key's user wins over a header").toMatchObject({
      user: 'bob',
      project: 'search',
      feature: 'rank',
      tags: { tier: 'gold' },
    });
  });

  it('requireKey: a key that pins its attribution cannot be re-attributed by headers', async () => {
    const { url } = await gateway({
      requireKey: true,
      keys: {
        lmk_dave_0123456789abcdef: {
          user: 'dave',
          project: 'search',
          pin: 'all',
          providerKeys: { openai: 'sk-upstream-openai-key' },
        },
      },
    });
    const openai = openaiClient(`${url}/v1`, {
      apiKey: 'lmk_dave_0123456789abcdef',
      headers: {
        'x-llm-meter-user': 'mallory',
        'x-llm-meter-project': 'billing',
        'x-llm-meter-feature': 'rank',
        'x-llm-meter-tags': '{"team":"other","user":"mallory"}',
      },
    });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
    const [record] = await settled();
    expect(record!.attribution, 'only what the key says').toEqual({
      user: 'dave',
      project: 'search',
      feature: undefined,
      tags: {},
    });
  });

  it('requireKey: an unknown key is a 401 in the provider shape, a key without that upstream a 403', async () => {
    const { url } = await gateway({ requireKey: true, keys: KEYS });
    const stranger = openaiClient(`${url}/v1`, { apiKey: CLIENT_KEY });
    const error = await caught(() =>
      stranger.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
    );
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    const carol = openaiClient(`${url}/v1`, { apiKey: 'lmk_carol_0123456789abcd' });
    const denied = await caught(() =>
      carol.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
    );
    expect(denied).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const anthropic = new Anthropic({ baseURL: url, apiKey: 'lmk_nobody_0123456789abcd', maxRetries: 0 });
    const bad = await caught(() =>
      anthropic.messages.create({
        model: 'claude-sonnet-4-5',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'x' }],
      }),
    );
    expect(bad).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(sim.calls, 'refused calls never reach the provider').toHaveLength(0);
  });
});

describe('gateway: timeouts', () => {
  const chat = (url: string, stream: boolean, options: Record<string, unknown> = {}) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${CLIENT_KEY}`,
        'x-sim-options': JSON.stringify(options),
      },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream }),
    });

  it('headers: 504 in the provider shape, not to be retried; upstream aborted; recorded as timeout', async () => {
    const { url } = await gateway({ timeouts: { headersMs: 60, idleMs: 1000, totalMs: 5000 } });
    const res = await chat(url, false, { fault: 'slow_headers', slowHeadersMs: 2000 });
    expect(res.status).toBe(504);
    expect(res.headers.get('x-llm-meter-timeout')).toBe('headers');
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('timeout');
    expect((await sim.waitForCall()).clientClosed).toBe(true);
    const [record] = await settled();
    expect(record).toMatchObject({ outcome: 'error', errorType: 'timeout' });
  });

  it('idle between chunks: the stream is cut (never ends cleanly); recorded as timeout', async () => {
    const { url } = await gateway({ timeouts: { headersMs: 1000, idleMs: 80, totalMs: 5000 } });
    const res = await chat(url, true, { outputTokens: 5, msPerToken: 1000 });
    expect(res.status).toBe(200);
    const error = await caught(() => res.text());
    expect(error, 'the client sees an interrupted body').toBeInstanceOf(Error);
    expect((await sim.waitForCall()).clientClosed).toBe(true);
    const [record] = await settled();
    expect(record).toMatchObject({ outcome: 'error', errorType: 'timeout', httpStatus: 200 });
  });

  it('total: a stream that keeps talking past the overall deadline is cut; recorded as timeout', async () => {
    const { url } = await gateway({ timeouts: { headersMs: 200, idleMs: 200, totalMs: 250 } });
    const res = await chat(url, true, { outputTokens: 400, msPerToken: 10 });
    const error = await caught(() => res.text());
    expect(error).toBeInstanceOf(Error);
    const truth = await sim.waitForCall();
    expect(truth.clientClosed).toBe(true);
    expect(truth.outputTokens).toBeLessThan(400);
    const [record] = await settled();
    expect(record).toMatchObject({ outcome: 'error', errorType: 'timeout' });
  });

  it('narrower timeouts must fit inside wider ones', async () => {
    await expect(
      startProxy({ port: 0, upstreams: { openai: sim.url }, timeouts: { idleMs: 5000, totalMs: 1000 } }),
    ).rejects.toThrow(/`timeouts.idleMs` \(5000 ms\) to be at most `timeouts.totalMs`/);
  });
});

describe('gateway: budgets, compression, shutdown', () => {
  it('a blocking budget refuses at the gateway with the provider-shaped 429; the SDK does not retry', async () => {
    const { url } = await gateway({}, newDb());
    await meter.budgets!.create({
      name: 'cap',
      scope: { user: 'alice' },
      period: 'day',
      limit_usd: 0.000001,
      action: 'block',
    });
    const openai = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: CLIENT_KEY,
      defaultHeaders: { 'x-llm-meter-user': 'alice' },
    });
    const error = await caught(() =>
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
    );
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('budget_exceeded');
    expect(sim.calls).toHaveLength(0);
    const [record] = await settled();
    expect(record).toMatchObject({ outcome: 'blocked', errorType: 'budget_exceeded' });
  });

  it('a compressed upstream body is forwarded decoded, without content-encoding or hop-by-hop headers', async () => {
    const payload = JSON.stringify({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hello there' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
    let seen: Record<string, unknown> = {};
    const upstream = createServer((req, res) => {
      seen = req.headers;
      req.resume();
      req.on('end', () => {
        const gz = gzipSync(payload);
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'content-length': gz.length,
          'keep-alive': 'timeout=5',
          'x-custom': 'kept',
        });
        res.end(gz);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    try {
      const { url } = await gateway({
        upstreams: { openai: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
      });
      const res = await rawPost(
        `${url}/v1/chat/completions`,
        {
          'content-type': 'application/json',
          authorization: `Bearer ${CLIENT_KEY}`,
          connection: 'keep-alive, x-hop',
          'x-hop': 'per-connection',
          'proxy-authorization': 'Basic abc',
          te: 'trailers',
        },
        JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages }),
      );
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(
        res.headers['content-length'],
        'the encoded length does not describe the decoded body',
      ).toBeUndefined();
      expect(res.headers['keep-alive'], "the upstream's keep-alive is not the client's").not.toBe(
        'timeout=5',
      );
      expect(res.headers['x-custom']).toBe('kept');
      expect(res.body).toBe(payload);
      expect(seen['x-hop'], 'a header named by connection is hop-by-hop').toBeUndefined();
      expect(seen['proxy-authorization']).toBeUndefined();
      expect(seen.te).toBeUndefined();
      expect(seen.authorization).toBe(`Bearer ${CLIENT_KEY}`);
      const [record] = await settled();
      expect(record).toMatchObject({ outcome: 'ok', usage: { inputTokens: 5, outputTokens: 2 } });
    } finally {
      await new Promise((r) => upstream.close(r));
    }
  });

  it('graceful shutdown: stops accepting, finishes the stream in flight, then flushes the store', async () => {
    const db = newDb();
    const { url } = await gateway({ shutdownGraceMs: 5000 }, db);
    sim.enqueue({ outputTokens: 20, msPerToken: 10 });
    const openai = openaiClient(`${url}/v1`);
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      stream: true,
    });
    const closing = gw!.close();
    gw = null;
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    await closing;
    expect(text.trim().split(' '), 'the stream in flight finished').toHaveLength(20);
    const refused = await caught(() => fetch(`${url}/v1/chat/completions`, { method: 'POST', body: '{}' }));
    expect(refused, 'no longer accepting').toBeInstanceOf(Error);
    const page = await meter.store!.events({ limit: 10 });
    expect(page.events, 'flushed to the store before close() resolved').toHaveLength(1);
    expect(page.events[0]).toMatchObject({ outcome: 'ok' });
  });
});
