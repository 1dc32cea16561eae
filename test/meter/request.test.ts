import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter, type FetchLike } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { JSON_BYTES, JSON_HEADERS, JSON_USAGE } from '../fixtures/fetch-recordings.js';
import { caught, chatMessages, createHarness, type Harness } from '../helpers/harness.js';
import { assertSpan } from '../helpers/otel.js';
import { bodyBytes, type ReplayServer, startReplay } from '../helpers/replay.js';

let sim: Simulator;
let replay: ReplayServer;
let h: Harness | undefined;

beforeAll(async () => {
  sim = await startSimulator();
  replay = await startReplay({
    '/v1/chat/completions': { headers: JSON_HEADERS, pieces: [JSON_BYTES] },
  });
});
afterAll(async () => {
  await replay.close();
  await sim.close();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  sim.reset();
  replay.requests.length = 0;
});

const encoder = new TextEncoder();
const chatBody = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: chatMessages,
  max_tokens: 30,
  temperature: 0.2,
});
const jsonHeaders = { 'content-type': 'application/json' };

interface BodyCase {
  name: string;
  parsed: boolean;
  /** Makes the call; returns the bytes the server must receive. */
  send(fetch: FetchLike, url: string): Promise<{ response: Response; sent: Buffer | null }>;
  maxRequestBodyBytes?: number;
}

const post = (body: BodyInit, extra: RequestInit = {}): RequestInit => ({
  method: 'POST',
  headers: jsonHeaders,
  body,
  ...extra,
});

const BODIES: BodyCase[] = [
  {
    name: 'string body',
    parsed: true,
    send: async (f, url) => ({ response: await f(url, post(chatBody)), sent: Buffer.from(chatBody) }),
  },
  {
    name: 'Uint8Array body',
    parsed: true,
    send: async (f, url) => ({
      response: await f(url, post(encoder.encode(chatBody))),
      sent: Buffer.from(chatBody),
    }),
  },
  {
    name: 'ArrayBuffer body',
    parsed: true,
    send: async (f, url) => ({
      response: await f(url, post(encoder.encode(chatBody).buffer as ArrayBuffer)),
      sent: Buffer.from(chatBody),
    }),
  },
  {
    name: 'Request object input',
    parsed: true,
    send: async (f, url) => ({
      response: await f(new Request(url, post(chatBody))),
      sent: Buffer.from(chatBody),
    }),
  },
  {
    name: 'URL object input',
    parsed: true,
    send: async (f, url) => ({
      response: await f(new URL(url), post(chatBody)),
      sent: Buffer.from(chatBody),
    }),
  },
  {
    name: 'Request object input with init overriding nothing but headers',
    parsed: true,
    send: async (f, url) => ({
      response: await f(new Request(url, post(chatBody)), { headers: { ...jsonHeaders, 'x-extra': '1' } }),
      sent: Buffer.from(chatBody),
    }),
  },
  {
    name: 'FormData body',
    parsed: false,
    send: async (f, url) => {
      const form = new FormData();
      form.set('model', 'gpt-4o-mini');
      form.set('file', new Blob(['a,b\n1,2\n']), 'data.csv');
      return { response: await f(url, { method: 'POST', body: form }), sent: null };
    },
  },
  {
    name: 'ReadableStream body',
    parsed: false,
    send: async (f, url) => {
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(chatBody.slice(0, 10)));
          controller.enqueue(encoder.encode(chatBody.slice(10)));
          controller.close();
        },
      });
      return {
        response: await f(url, { ...post(stream), duplex: 'half' } as RequestInit),
        sent: Buffer.from(chatBody),
      };
    },
  },
  {
    name: 'Blob body',
    parsed: false,
    send: async (f, url) => ({
      response: await f(url, post(new Blob([chatBody]))),
      sent: Buffer.from(chatBody),
    }),
  },
  {
    name: 'non-JSON body',
    parsed: false,
    send: async (f, url) => ({
      response: await f(url, post('model=gpt-4o-mini&prompt=hi')),
      sent: Buffer.from('model=gpt-4o-mini&prompt=hi'),
    }),
  },
  {
    name: 'JSON that is not an object',
    parsed: false,
    send: async (f, url) => ({
      response: await f(url, post('["gpt-4o-mini"]')),
      sent: Buffer.from('["gpt-4o-mini"]'),
    }),
  },
  {
    name: 'string body over maxRequestBodyBytes',
    parsed: false,
    maxRequestBodyBytes: 100,
    send: async (f, url) => ({ response: await f(url, post(chatBody)), sent: Buffer.from(chatBody) }),
  },
  {
    name: 'Request object over maxRequestBodyBytes',
    parsed: false,
    maxRequestBodyBytes: 100,
    send: async (f, url) => ({
      response: await f(new Request(url, post(chatBody))),
      sent: Buffer.from(chatBody),
    }),
  },
];

/** The multipart boundary is random per serialization. */
const withoutBoundary = (bytes: Buffer, contentType: string | undefined) => {
  const boundary = /boundary=(.+)$/.exec(contentType ?? '')?.[1];
  return boundary ? bytes.toString('latin1').replaceAll(boundary, 'BOUNDARY') : bytes.toString('latin1');
};

describe('request bodies: passed through untouched, parsed when they can be', () => {
  it.each(BODIES)('$name → parsed: $parsed', async (c) => {
    const records: CallRecord[] = [];
    const meter = createMeter({
      database: false,
      onRecord: (r) => records.push(r),
      ...(c.maxRequestBodyBytes ? { maxRequestBodyBytes: c.maxRequestBodyBytes } : {}),
    });
    const url = `${replay.url}/v1/chat/completions`;
    const raw = await c.send(fetch, url);
    const metered = await c.send(meter.fetch, url);
    expect((await bodyBytes(metered.response)).equals(await bodyBytes(raw.response))).toBe(true);
    await meter.shutdown();

    const [rawReq, meteredReq] = replay.requests;
    expect(meteredReq, 'the server got the request').toBeDefined();
    if (metered.sent) {
      expect(meteredReq!.body.toString(), 'server received the bytes sent').toBe(metered.sent.toString());
    }
    expect(
      withoutBoundary(meteredReq!.body, meteredReq!.headers['content-type']),
      'same bytes as raw fetch sends',
    ).toBe(withoutBoundary(rawReq!.body, rawReq!.headers['content-type']));
    expect(meteredReq!.headers['content-type']?.replace(/boundary=.+$/, '')).toBe(
      rawReq!.headers['content-type']?.replace(/boundary=.+$/, ''),
    );

    expect(records, 'one record').toHaveLength(1);
    const record = records[0]!;
    expect(record.request.parsed, 'request.parsed').toBe(c.parsed);
    if (c.parsed) {
      expect(record.request).toMatchObject({
        model: 'gpt-4o-mini',
        maxTokens: 30,
        temperature: 0.2,
        stream: false,
      });
    } else {
      expect(record.request.model).toBeNull();
    }
    // The response is read either way.
    expect(record.usage).toMatchObject({ ...JSON_USAGE, source: 'provider' });
    expect(record.responseModel).toBe('gpt-4o-mini-2024-07-18');
  });
});

describe('what is not an LLM call is not touched', () => {
  const cases: [string, string, RequestInit | undefined][] = [
    ['GET to an LLM path', '/v1/chat/completions', undefined],
    ['HEAD to an LLM path', '/v1/chat/completions', { method: 'HEAD' }],
    ['POST to another path', '/v1/files', post(chatBody)],
    ['POST to an LLM path with a JSON body naming no model', '/v1/chat/completions', post('{"messages":[]}')],
    ['a relative URL', '/v1/chat/completions', post(chatBody)],
  ];

  it.each(cases)(
    '%s: base fetch gets the very same arguments, no record, no span',
    async (name, path, init) => {
      const seen: [unknown, unknown][] = [];
      const base: FetchLike = async (input, i) => {
        seen.push([input, i]);
        return new Response('{}', { status: 200, headers: jsonHeaders });
      };
      h = createHarness(sim, { fetch: base });
      const input = name === 'a relative URL' ? path : `${replay.url}${path}`;
      await h.meter.fetch(input, init);
      await h.meter.flush();
      expect(seen).toHaveLength(1);
      expect(seen[0]![0], 'same input').toBe(input);
      expect(seen[0]![1], 'same init object').toBe(init);
      expect(h.records).toHaveLength(0);
      expect(h.tel.spans()).toHaveLength(0);
      expect(h.meter.stats().calls).toBe(0);
    },
  );
});

/** The simulator's ids and timestamps differ per call; everything else must be equal. */
const normalise = (sse: string) =>
  sse
    .replace(/"id":"[^"]*"/g, '"id":"ID"')
    .replace(/"created":\d+/g, '"created":0')
    .replace(/"created_at":\d+/g, '"created_at":0');

describe('include_usage: exact usage without changing the stream the caller asked for', () => {
  const cases = [
    { name: 'OpenAI, LF, one write per event', path: '/v1/chat/completions', behavior: {}, n: 1 },
    {
      name: 'OpenAI, CRLF, random chunks, two choices',
      path: '/v1/chat/completions',
      behavior: { lineEnding: '\r\n', chunking: 'random' },
      n: 2,
    },
    {
      name: 'OpenAI, CR, tool calls',
      path: '/v1/chat/completions',
      behavior: { lineEnding: '\r', toolCalls: 2 },
      n: 1,
    },
    {
      name: 'Azure classic deployment',
      path: '/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21',
      behavior: { chunking: 'random' },
      n: 1,
    },
  ];

  it.each(cases)('$name', async (c) => {
    h = createHarness(sim);
    const init = (extra: object = {}): RequestInit => ({
      method: 'POST',
      headers: { ...jsonHeaders, 'x-sim-options': JSON.stringify({ outputTokens: 8, ...c.behavior }) },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: chatMessages,
        stream: true,
        ...(c.n > 1 ? { n: c.n } : {}),
        ...extra,
      }),
    });
    const url = `${sim.url}${c.path}`;
    const metered = await (await h.meter.fetch(url, init())).text();
    const asked = sim.calls[0]!;
    const plain = await (await fetch(url, init())).text();
    const withUsage = await (await fetch(url, init({ stream_options: { include_usage: true } }))).text();

    expect((asked.body as { stream_options?: unknown }).stream_options, 'usage was asked for').toEqual({
      include_usage: true,
    });
    expect(withUsage, 'the upstream stream did carry usage').toContain('"usage":{');
    expect(normalise(metered), 'caller sees the stream it asked for').toBe(normalise(plain));
    expect(metered).not.toContain('usage');

    const record = await h.record();
    expect(record.usage, 'exact provider usage').toEqual({
      inputTokens: asked.inputTokens,
      outputTokens: asked.outputTokens,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      source: 'provider',
    });
    expect(record.outcome).toBe('ok');
  });

  it('the caller asked for usage itself: request and stream untouched', async () => {
    h = createHarness(sim);
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      stream: true,
      stream_options: { include_usage: true },
    });
    await (await h.meter.fetch(`${replay.url}/v1/chat/completions`, post(body))).text();
    expect(replay.requests[0]!.body.toString()).toBe(body);
    expect(replay.requests[0]!.headers['content-length']).toBe(String(Buffer.byteLength(body)));
  });

  it('streamUsage: false sends the request untouched', async () => {
    h = createHarness(sim, { streamUsage: false });
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream: true });
    await (await h.meter.fetch(`${replay.url}/v1/chat/completions`, post(body))).text();
    expect(replay.requests[0]!.body.toString()).toBe(body);
  });

  it('the amended request keeps every other field and header, with a correct content-length', async () => {
    h = createHarness(sim);
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      stream: true,
      stream_options: { include_obfuscation: false },
      user: 'ü-user',
    });
    await (
      await h.meter.fetch(`${replay.url}/v1/chat/completions`, {
        ...post(body),
        headers: { ...jsonHeaders, 'content-length': String(Buffer.byteLength(body)), 'x-custom': 'kept' },
      })
    ).text();
    const got = replay.requests[0]!;
    expect(JSON.parse(got.body.toString())).toEqual({
      ...JSON.parse(body),
      stream_options: { include_obfuscation: false, include_usage: true },
    });
    expect(got.headers['x-custom']).toBe('kept');
    expect(got.headers['content-length']).toBe(String(got.body.length));
  });
});

describe('enforceContextWindow', () => {
  // gpt-4o-mini has a 128,000-token window; each " hello" is one token.
  const huge = `hello${' hello'.repeat(130_000)}`;

  it('meter.fetch refuses locally with a 400 in the provider shape; nothing sent, a blocked record', async () => {
    h = createHarness(sim, { enforceContextWindow: true });
    const res = await h.meter.fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...jsonHeaders, authorization: 'Bearer sk-secret' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 100,
        messages: [{ role: 'user', content: huge }],
      }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-should-retry')).toBe('false');
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('context_length_exceeded');
    expect(body.error.message).toMatch(/gpt-4o-mini.*context window of 128000 tokens.*not sent/);
    expect(sim.calls, 'the simulator saw no request').toHaveLength(0);
    const record = await h.record();
    expect(record).toMatchObject({
      outcome: 'blocked',
      errorType: 'context_length_exceeded',
      httpStatus: 400,
      usage: null,
      preflight: { contextWindow: 128_000, contextExceeded: true },
    });
    expect(record.preflight.inputTokensEstimate).toBeGreaterThan(130_000);
    expect(record.cost.totalNanos).toBe(0);
    assertSpan(h.tel.llmSpans()[0], {
      attributes: {
        'error.type': 'context_length_exceeded',
        'llm_meter.outcome': 'blocked',
        'llm_meter.preflight.context_exceeded': true,
      },
    });
  });

  it('through the OpenAI SDK: BadRequestError with the refusal message after one attempt; nothing sent', async () => {
    h = createHarness(sim, { enforceContextWindow: true });
    const error = await caught(() =>
      h!.openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: huge }],
      }),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toMatch(/context window/);
    expect(sim.calls).toHaveLength(0);
    expect((await h.record()).outcome).toBe('blocked');
    expect(h.records, 'one attempt, one record').toHaveLength(1);
  });

  it('a prompt that fits is sent, with the pre-flight figures recorded', async () => {
    h = createHarness(sim, { enforceContextWindow: true });
    await h.openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages, max_tokens: 50 });
    const record = await h.record();
    expect(record.outcome).toBe('ok');
    expect(record.preflight).toMatchObject({
      contextWindow: 128_000,
      contextExceeded: false,
      inputTokensEstimate: sim.calls[0]!.inputTokens,
    });
  });
});
