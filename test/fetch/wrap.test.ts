/**
 * src/fetch/wrap.ts on its own: a stub engine and an in-process upstream, so each step of a
 * metered call (parse, begin, gates, amend, send, observe, end) is seen from the outside. What
 * leaves the wrapper is a PreparedCall (to the gates) and a frozen CallEnd (at the end); a
 * refusal is described, and the wrapper answers it; a failing adapter is counted, never felt.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CallEnd, PreparedCall } from '../../src/fetch/call.js';
import type { CallSpans, Engine, WrapperPlace } from '../../src/fetch/engine.js';
import { type Refusal, refusalResponse } from '../../src/fetch/refuse.js';
import type { FetchInput, FetchLike } from '../../src/fetch/request.js';
import { wrapFetch } from '../../src/fetch/wrap.js';
import { createMeter } from '../../src/index.js';
import { openaiAdapter } from '../../src/providers/openai.js';
import type { ProviderAdapter } from '../../src/providers/types.js';
import type { PreflightInfo } from '../../src/record.js';

const CHAT_URL = 'https://api.openai.com/v1/chat/completions';
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const post = (body: unknown, extra: RequestInit = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
  ...extra,
});

const COMPLETION = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello!' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
};
const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const SSE = [
  'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}\n\n',
  'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}\n\n',
  'data: {"id":"c1","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n',
  'data: [DONE]\n\n',
];
const sse = (events: readonly string[] = SSE) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const e of events) controller.enqueue(new TextEncoder().encode(e));
        controller.close();
      },
    }),
    { headers: { 'content-type': 'text/event-stream' } },
  );

const FIGURES: PreflightInfo = {
  inputTokensEstimate: 9,
  projectedMaxCostNanos: 1234,
  contextWindow: 128_000,
  contextExceeded: false,
};

/** An engine that records what the wrapper tells it. */
function stubEngine(fields: Partial<Engine> = {}) {
  const ends: CallEnd[] = [];
  const reports: [WrapperPlace, unknown][] = [];
  const prepared: PreparedCall[] = [];
  let begun = 0;
  let estimates = 0;
  let ids = 0;
  const handle = { traceId: 't'.repeat(32), spanId: 's'.repeat(16) };
  const spans: CallSpans = {
    start: () => handle,
    within: (_handle, fn) => fn(),
  };
  const engine: Engine = {
    adapters: [openaiAdapter],
    maxRequestBodyBytes: 1 << 20,
    maxResponseBodyBytes: 1 << 20,
    streamUsage: true,
    hashesApiKeys: false,
    now: () => performance.now(),
    newId: () => `call-${++ids}`,
    attribution: () => ({ user: 'alice', tags: {} }),
    spans,
    begin: () => {
      begun++;
    },
    estimate: async () => {
      estimates++;
      return FIGURES;
    },
    gate: (call) => {
      prepared.push(call);
      return null;
    },
    end: (end) => {
      ends.push(end);
    },
    report: (place, error) => {
      reports.push([place, error]);
    },
    ...fields,
  };
  return {
    engine,
    ends,
    reports,
    prepared,
    handle,
    get begun() {
      return begun;
    },
    get estimates() {
      return estimates;
    },
    /** The one call's end, once it has ended. */
    async end(): Promise<CallEnd> {
      await vi.waitFor(() => expect(ends).toHaveLength(1));
      return ends[0]!;
    },
  };
}

/** An upstream that answers with `answer` and remembers what it was asked. */
function upstream(answer: (input: FetchInput, init?: RequestInit) => Response | Promise<Response>) {
  const calls: { input: FetchInput; init: RequestInit | undefined }[] = [];
  const fetch: FetchLike = async (input, init) => {
    calls.push({ input, init });
    return answer(input, init);
  };
  return { fetch, calls };
}

/** The OpenAI adapter with some methods replaced (a broken adapter, for the fail-open fences). */
function adapterWith(fields: Partial<ProviderAdapter>): ProviderAdapter {
  const adapter: ProviderAdapter = {
    ...openaiAdapter,
    detect(url: URL, method: string) {
      const detection = openaiAdapter.detect(url, method, new Headers());
      return detection && { ...detection, adapter };
    },
    ...fields,
  } as ProviderAdapter;
  return adapter;
}

const boom = (what: string) => () => {
  throw new Error(`${what} is broken`);
};

describe('wrapFetch: what is not an LLM call', () => {
  it.each([
    ['a GET', CHAT_URL, { method: 'GET' }],
    ['an unknown path', 'https://api.openai.com/v1/files', post({})],
    ['a JSON body that names no model', CHAT_URL, post({ messages: [] })],
  ])('%s goes to the base fetch with the very same arguments, unmetered', async (_name, url, init) => {
    const stub = stubEngine();
    const up = upstream(() => json({}));
    await wrapFetch(up.fetch, stub.engine)(url, init);
    expect(up.calls).toEqual([{ input: url, init }]);
    expect(stub.begun).toBe(0);
    expect(stub.ends).toHaveLength(0);
  });
});

describe('wrapFetch: the call lifecycle', () => {
  it('begins once, ends once with a frozen CallEnd after the caller read the body', async () => {
    const stub = stubEngine();
    const up = upstream(() => json(COMPLETION, 200, { 'x-request-id': 'req-1' }));
    const res = await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat));
    expect(stub.begun).toBe(1);
    expect(stub.ends, 'not ended before the body is read').toHaveLength(0);
    expect(await res.json()).toEqual(COMPLETION);
    expect(res.headers.get('x-request-id')).toBe('req-1');
    const end = await stub.end();
    expect(Object.isFrozen(end), 'the end is frozen').toBe(true);
    expect(end).toMatchObject({
      id: 'call-1',
      info: { parsed: true, model: 'gpt-4o-mini', stream: false },
      attribution: { user: 'alice' },
      span: stub.handle,
      status: 200,
      ending: 'done',
      refusal: null,
      guard: null,
      providerError: null,
      callerAborted: false,
      parsed: {
        terminal: true,
        responseModel: 'gpt-4o-mini-2024-07-18',
        usage: { inputTokens: 9, outputTokens: 3 },
      },
    });
    expect(end.endMs).toBeGreaterThanOrEqual(end.headersMs!);
    expect(end.headersMs).toBeGreaterThanOrEqual(end.startMs);
    expect(stub.reports).toEqual([]);
  });

  it('a stream: events counted and token times stamped; the usage chunk it asked for is hidden', async () => {
    const stub = stubEngine();
    const up = upstream(() => sse());
    const res = await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post({ ...chat, stream: true }));
    const sent = JSON.parse(up.calls[0]!.init!.body as string);
    expect(sent.stream_options, 'amended: asks for usage').toEqual({ include_usage: true });
    const text = await res.text();
    expect(text).not.toContain('prompt_tokens');
    expect(text).not.toContain('"usage"');
    const end = await stub.end();
    expect(end).toMatchObject({
      chunks: 4,
      ending: 'done',
      parsed: { terminal: true, usage: { outputTokens: 2 } },
    });
    expect(end.firstTokenMs).not.toBeNull();
    expect(end.lastTokenMs).toBeGreaterThanOrEqual(end.firstTokenMs!);
  });

  it('the upstream throws: the caller gets the same error; the call ends `thrown`', async () => {
    const stub = stubEngine();
    const failure = new TypeError('fetch failed');
    const up = upstream(() => {
      throw failure;
    });
    await expect(wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat))).rejects.toBe(failure);
    expect(await stub.end()).toMatchObject({
      ending: 'thrown',
      error: failure,
      status: null,
      callerAborted: false,
    });
  });

  it('the caller cancels a stream: the call ends `cancel`, aborted by the caller', async () => {
    const stub = stubEngine();
    // One event, then nothing more until the caller gives up.
    const up = upstream(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start: (controller) => controller.enqueue(new TextEncoder().encode(SSE[0]!)),
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    );
    const res = await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post({ ...chat, stream: true }));
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    expect(await stub.end()).toMatchObject({ ending: 'cancel', callerAborted: true });
  });
});

describe('wrapFetch: gates read a PreparedCall', () => {
  it('what the gate sees: id, detection, model, request, body, attribution; nothing to write', async () => {
    const stub = stubEngine();
    await wrapFetch(upstream(() => json(COMPLETION)).fetch, stub.engine)(CHAT_URL, post(chat));
    const call = stub.prepared[0]!;
    expect(call).toMatchObject({
      id: 'call-1',
      model: 'gpt-4o-mini',
      info: { model: 'gpt-4o-mini', parsed: true },
      body: chat,
      unparsedReason: null,
      attribution: { user: 'alice' },
      detection: { provider: 'openai', operation: 'chat' },
    });
    expect(call.target.url.href).toBe(CHAT_URL);
  });

  it('estimate() is counted once however many ask, and the record carries its figures', async () => {
    const stub = stubEngine({
      gate: async (call) => {
        const [a, b] = await Promise.all([call.estimate(), call.estimate()]);
        expect(a).toBe(b);
        return null;
      },
    });
    const res = await wrapFetch(upstream(() => json(COMPLETION)).fetch, stub.engine)(CHAT_URL, post(chat));
    await res.text();
    expect(stub.estimates).toBe(1);
    expect((await stub.end()).preflight).toEqual(FIGURES);
  });

  it('a call nobody estimated carries no figures', async () => {
    const stub = stubEngine();
    await (await wrapFetch(upstream(() => json(COMPLETION)).fetch, stub.engine)(CHAT_URL, post(chat))).text();
    expect(stub.estimates).toBe(0);
    expect((await stub.end()).preflight).toEqual({
      inputTokensEstimate: null,
      projectedMaxCostNanos: null,
      contextWindow: null,
      contextExceeded: null,
    });
  });

  it('a gate that answers synchronously costs no tick: the call is sent within the fetch call', () => {
    const stub = stubEngine();
    const up = upstream(() => json(COMPLETION));
    void wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat));
    expect(up.calls, 'sent before fetch() returned').toHaveLength(1);
  });

  it('an asynchronous gate is awaited before sending', async () => {
    const stub = stubEngine({ gate: async () => null });
    const up = upstream(() => json(COMPLETION));
    const pending = wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat));
    expect(up.calls).toHaveLength(0);
    await pending;
    expect(up.calls).toHaveLength(1);
  });

  it('a gate that fails is counted at `gates`, and the call is sent', async () => {
    const stub = stubEngine({ gate: () => Promise.reject(new Error('ledger down')) });
    const up = upstream(() => json(COMPLETION));
    const res = await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat));
    expect(res.status).toBe(200);
    expect(up.calls).toHaveLength(1);
    expect(stub.reports.map(([place]) => place)).toEqual(['gates']);
  });
});

describe('wrapFetch: one way to refuse', () => {
  const budget: Refusal = {
    kind: 'budget',
    marker: ['x-llm-meter-budget', 'exceeded'],
    status: 429,
    type: 'budget_exceeded',
    message: 'Budget "cap" would be exceeded by this call; it was not sent.',
  };

  it.each([
    ['synchronously', () => budget],
    ['asynchronously', async () => budget],
  ])(
    'a gate refusing %s: never sent; a provider-shaped 429; the end carries the refusal',
    async (_how, gate) => {
      const stub = stubEngine({ gate });
      const up = upstream(() => json(COMPLETION));
      const res = await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat));
      expect(up.calls).toHaveLength(0);
      expect(res.status).toBe(429);
      expect(res.headers.get('x-llm-meter-budget')).toBe('exceeded');
      expect(res.headers.get('x-should-retry')).toBe('false');
      expect(await res.json()).toEqual({
        error: {
          type: 'budget_exceeded',
          code: 'budget_exceeded',
          param: null,
          message: `${budget.message} (llm-meter)`,
        },
      });
      expect(await stub.end()).toMatchObject({
        ending: 'refused',
        refusal: budget,
        status: 429,
        headersMs: null,
      });
    },
  );

  it('an adapter that cannot shape the refusal: counted, and the refusal holds in a plain shape', async () => {
    const adapter = adapterWith({ errorBody: boom('errorBody') });
    const stub = stubEngine({ adapters: [adapter], gate: () => budget });
    const res = await wrapFetch(upstream(() => json(COMPLETION)).fetch, stub.engine)(CHAT_URL, post(chat));
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('budget_exceeded');
    expect(stub.reports.map(([place]) => place)).toEqual(['adapter.errorBody']);
  });

  it('a guard beneath the meter, in this process: known by its response', async () => {
    const stub = stubEngine();
    const guarded = upstream(() =>
      refusalResponse(openaiAdapter, {
        kind: 'guard',
        marker: ['x-llm-meter-guard', 'user_requests'],
        status: 429,
        type: 'user_rate_limit_exceeded',
        message: 'too many',
        shouldRetry: true,
      }),
    );
    const res = await wrapFetch(guarded.fetch, stub.engine)(CHAT_URL, post(chat));
    await res.text();
    expect(await stub.end()).toMatchObject({
      guard: 'user_requests',
      status: 429,
      ending: 'done',
      providerError: { type: 'user_rate_limit_exceeded' },
    });
  });

  it('a guard in a gateway in front: known by its `x-llm-meter-guard` header (the wire contract)', async () => {
    const stub = stubEngine();
    const gateway = upstream(() =>
      json({ error: { type: 'client_rate_limited', code: 'client_rate_limited' } }, 429, {
        'x-llm-meter-guard': 'rate_limiter',
      }),
    );
    await (await wrapFetch(gateway.fetch, stub.engine)(CHAT_URL, post(chat))).text();
    expect((await stub.end()).guard).toBe('rate_limiter');
  });

  it("a provider's own 429 is no guard's", async () => {
    const stub = stubEngine();
    const provider = upstream(() => json({ error: { type: 'rate_limit_exceeded' } }, 429));
    await (await wrapFetch(provider.fetch, stub.engine)(CHAT_URL, post(chat))).text();
    expect(await stub.end()).toMatchObject({ guard: null, providerError: { type: 'rate_limit_exceeded' } });
  });
});

describe('wrapFetch: a failing adapter is counted at its place; the caller never feels it', () => {
  it.each<[WrapperPlace, Partial<ProviderAdapter>, boolean]>([
    ['adapter.parseRequest', { parseRequest: boom('parseRequest') }, false],
    ['adapter.readHeaders', { readHeaders: boom('readHeaders') }, false],
    ['adapter.amendRequest', { amendRequest: boom('amendRequest') }, true],
    ['filter', { amendRequest: (body) => ({ body, filter: boom('filter') }) }, true],
    ['adapter.parseError', { parseError: boom('parseError') }, false],
    ['adapter.bodyFormat', { bodyFormat: boom('bodyFormat') }, false],
  ])('%s', async (place, broken, streamed) => {
    const stub = stubEngine({ adapters: [adapterWith(broken)] });
    const expected = place === 'adapter.parseError' ? { error: { type: 'server_error' } } : COMPLETION;
    const up = upstream(() =>
      streamed
        ? sse()
        : json(expected, place === 'adapter.parseError' ? 500 : 200, { 'x-request-id': 'req-1' }),
    );
    const res = await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post({ ...chat, stream: streamed }));
    if (streamed) expect(await res.text()).toContain('data: [DONE]');
    else expect(await res.json()).toEqual(expected);
    await stub.end();
    expect(stub.reports.map(([p]) => p)).toContain(place);
    expect(stub.reports.every(([, error]) => error instanceof Error)).toBe(true);
  });

  it('adapter.parser: a parser that throws on every event leaves the stream intact', async () => {
    const adapter = adapterWith({
      createParser: () => ({
        event: boom('event'),
        json: boom('json'),
        result: boom('result'),
      }),
    });
    const stub = stubEngine({ adapters: [adapter], streamUsage: false });
    const res = await wrapFetch(upstream(() => sse()).fetch, stub.engine)(
      CHAT_URL,
      post({ ...chat, stream: true }),
    );
    expect(await res.text()).toBe(SSE.join(''));
    const end = await stub.end();
    expect(end.chunks).toBe(4);
    expect(end.parsed.terminal, 'an empty result stands in').toBe(false);
    expect(stub.reports.filter(([p]) => p === 'adapter.parser')).toHaveLength(5);
  });

  it('adapter.createParser: the call passes through unmetered', async () => {
    const stub = stubEngine({ adapters: [adapterWith({ createParser: boom('createParser') })] });
    const up = upstream(() => json(COMPLETION));
    expect(await (await wrapFetch(up.fetch, stub.engine)(CHAT_URL, post(chat))).json()).toEqual(COMPLETION);
    expect(stub.begun).toBe(0);
    expect(stub.reports.map(([p]) => p)).toEqual(['adapter.createParser']);
  });

  it('spans: a span sink that cannot start leaves the call metered without a span', async () => {
    const stub = stubEngine();
    stub.engine.spans = { ...stub.engine.spans, start: boom('spans.start') };
    await (await wrapFetch(upstream(() => json(COMPLETION)).fetch, stub.engine)(CHAT_URL, post(chat))).text();
    expect((await stub.end()).span).toBeNull();
    expect(stub.reports.map(([p]) => p)).toEqual(['spans']);
  });
});

describe('through a meter: meter.stats().sinkErrorsBy counts each place', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('parseRequest and readHeaders throwing: the response is intact, both places counted', async () => {
    const up = upstream(() => json(COMPLETION, 200, { 'x-request-id': 'req-1' }));
    const meter = createMeter({ database: false, fetch: up.fetch });
    try {
      const before = meter.stats().sinkErrorsBy;
      for (const place of ['adapter.parseRequest', 'adapter.readHeaders', 'filter', 'observer', 'gates']) {
        expect(before[place], `${place} is listed at zero before it fails`).toBe(0);
      }
      vi.spyOn(openaiAdapter, 'parseRequest').mockImplementation(boom('parseRequest'));
      vi.spyOn(openaiAdapter, 'readHeaders').mockImplementation(boom('readHeaders'));
      const res = await meter.fetch(CHAT_URL, post(chat));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe('req-1');
      expect(await res.json()).toEqual(COMPLETION);
      await meter.flush();
      const stats = meter.stats();
      expect(stats.calls).toBe(1);
      expect(stats.inFlight).toBe(0);
      expect(stats.sinkErrorsBy['adapter.parseRequest']).toBe(1);
      expect(stats.sinkErrorsBy['adapter.readHeaders']).toBe(1);
      expect(stats.sinkErrors).toBe(2);
    } finally {
      await meter.shutdown();
    }
  });
});
