import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { backoffDelay, type RetryPolicy, withRetry } from '../../src/resilience/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { caught, chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { createTestTelemetry } from '../helpers/otel.js';

/** Retry timing with an injected clock, randomness and sleep: a table of named cases (ky `test/retry-timing.ts`). */

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

type Step = { status: number; headers?: Record<string, string> } | { throws: unknown };

interface Case {
  name: string;
  steps: Step[];
  policy?: RetryPolicy;
  random?: number;
  /** Waits between attempts, in order. */
  delays: number[];
  /** The final status returned, or 'throws'. */
  result: number | 'throws';
}

const fetchFailed = (code: string) =>
  Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(code), { code }) });
const timeout = () => new DOMException('The operation timed out.', 'TimeoutError');
const httpDate = (ms: number) => new Date(T0 + ms).toUTCString();

const CASES: Case[] = [
  { name: '200 is returned at once', steps: [{ status: 200 }], delays: [], result: 200 },
  {
    name: '429: retry-after-ms wins over retry-after',
    steps: [{ status: 429, headers: { 'retry-after-ms': '1500', 'retry-after': '9' } }, { status: 200 }],
    delays: [1500],
    result: 200,
  },
  {
    name: '429: retry-after in seconds',
    steps: [{ status: 429, headers: { 'retry-after': '2' } }, { status: 200 }],
    delays: [2000],
    result: 200,
  },
  {
    name: '503: retry-after as an HTTP date',
    steps: [{ status: 503, headers: { 'retry-after': httpDate(3000) } }, { status: 200 }],
    delays: [3000],
    result: 200,
  },
  {
    name: '500 without a hint: full jitter over 500 ms, then 1,000 ms',
    steps: [{ status: 500 }, { status: 500 }, { status: 200 }],
    random: 0.5,
    delays: [250, 500],
    result: 200,
  },
  {
    name: '529 (overloaded) is retried',
    steps: [{ status: 529 }, { status: 200 }],
    random: 0.5,
    delays: [250],
    result: 200,
  },
  {
    name: '408 is retried',
    steps: [{ status: 408 }, { status: 200 }],
    random: 0.5,
    delays: [250],
    result: 200,
  },
  {
    name: '409 is retried',
    steps: [{ status: 409 }, { status: 200 }],
    random: 0.5,
    delays: [250],
    result: 200,
  },
  { name: '400 is never retried', steps: [{ status: 400 }, { status: 200 }], delays: [], result: 400 },
  { name: '401 is never retried', steps: [{ status: 401 }, { status: 200 }], delays: [], result: 401 },
  {
    name: '404 with x-should-retry: true is retried',
    steps: [{ status: 404, headers: { 'x-should-retry': 'true' } }, { status: 200 }],
    random: 0,
    delays: [0],
    result: 200,
  },
  {
    name: 'a budget refusal (429, x-should-retry: false) is never retried',
    steps: [
      {
        status: 429,
        headers: { 'x-should-retry': 'false', 'x-llm-meter-budget': 'exceeded', 'retry-after': '1' },
      },
      { status: 200 },
    ],
    delays: [],
    result: 429,
  },
  {
    name: '500 with x-should-retry: false is not retried',
    steps: [{ status: 500, headers: { 'x-should-retry': 'false' } }, { status: 200 }],
    delays: [],
    result: 500,
  },
  {
    name: 'attempts are capped: the last failure is returned',
    steps: [{ status: 500 }, { status: 502 }, { status: 503 }, { status: 200 }],
    random: 0.5,
    delays: [250, 500],
    result: 503,
  },
  {
    name: 'total time is capped: no wait starts that would end past it',
    steps: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 200 }],
    policy: { maxAttempts: 5, baseDelayMs: 800, maxElapsedMs: 1000 },
    random: 0.99,
    delays: [792],
    result: 500,
  },
  {
    name: 'backoff ceilings stop at maxDelayMs',
    steps: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 200 }],
    policy: { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 1000 },
    random: 0.999,
    delays: [499, 999, 999],
    result: 200,
  },
  {
    name: 'a retry-after longer than maxRetryAfterMs ends the retries',
    steps: [{ status: 429, headers: { 'retry-after': '120' } }, { status: 200 }],
    delays: [],
    result: 429,
  },
  {
    name: 'a network error (connection refused) is retried',
    steps: [{ throws: fetchFailed('ECONNREFUSED') }, { status: 200 }],
    random: 0.5,
    delays: [250],
    result: 200,
  },
  {
    name: 'a connect timeout is retried: the request was never sent',
    steps: [{ throws: fetchFailed('UND_ERR_CONNECT_TIMEOUT') }, { status: 200 }],
    random: 0.5,
    delays: [250],
    result: 200,
  },
  {
    name: 'a timeout after sending is not retried: the provider may have completed it',
    steps: [{ throws: timeout() }, { status: 200 }],
    delays: [],
    result: 'throws',
  },
  {
    name: 'a headers timeout is retried only with retryTimeouts',
    steps: [{ throws: fetchFailed('UND_ERR_HEADERS_TIMEOUT') }, { status: 200 }],
    policy: { retryTimeouts: true },
    random: 0.5,
    delays: [250],
    result: 200,
  },
  {
    name: '504 may have completed: not retried by default',
    steps: [{ status: 504 }, { status: 200 }],
    delays: [],
    result: 504,
  },
  {
    name: '504 is retried with retryTimeouts',
    steps: [{ status: 504 }, { status: 200 }],
    policy: { retryTimeouts: true },
    random: 0.5,
    delays: [250],
    result: 200,
  },
  {
    name: 'an unknown error is not retried',
    steps: [{ throws: new RangeError('bug') }, { status: 200 }],
    delays: [],
    result: 'throws',
  },
];

function scripted(steps: Step[]) {
  let calls = 0;
  const fetch = async (_input: string | URL | Request, _init?: RequestInit): Promise<Response> => {
    const step = steps[calls++];
    if (!step) throw new Error('script exhausted');
    if ('throws' in step) throw step.throws;
    return new Response(step.status === 200 ? '{"ok":true}' : '{"error":{}}', {
      status: step.status,
      headers: step.headers,
    });
  };
  return { fetch, calls: () => calls };
}

describe('withRetry timing (injected clock, randomness and sleep)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      let now = T0;
      const delays: number[] = [];
      const { fetch, calls } = scripted(c.steps);
      const retrying = withRetry(fetch, {
        now: () => now,
        random: () => c.random ?? 0.5,
        sleep: async (ms) => {
          delays.push(ms);
          now += ms;
        },
        ...c.policy,
      });
      let result: number | 'throws';
      try {
        result = (
          await retrying('https://api.openai.com/v1/chat/completions', { method: 'POST', body: '{}' })
        ).status;
      } catch {
        result = 'throws';
      }
      expect(result, 'final result').toBe(c.result);
      expect(delays, 'waits').toEqual(c.delays);
      expect(calls(), 'attempts').toBe(c.delays.length + 1);
    });
  }

  it('the caller aborting is never retried, and aborts a wait', async () => {
    const controller = new AbortController();
    const { fetch, calls } = scripted([{ status: 500 }, { status: 200 }]);
    const retrying = withRetry(fetch, {
      random: () => 0.5,
      sleep: (_ms, signal) =>
        new Promise((_resolve, reject) => {
          controller.abort();
          reject(signal?.reason);
        }),
    });
    const error = await caught(() =>
      retrying('https://api.openai.com/v1/chat/completions', { method: 'POST', signal: controller.signal }),
    );
    expect((error as Error).name).toBe('AbortError');
    expect(calls()).toBe(1);
  });

  it('backoffDelay: full jitter in [0, min(max, base × 2^(n−1)))', () => {
    const o = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, o, () => 0.999999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay(3, o, () => 0)).toBe(0);
  });

  it('a Request input is cloned per attempt: its body is sent every time', async () => {
    const bodies: string[] = [];
    let n = 0;
    const retrying = withRetry(
      async (input: Request) => {
        bodies.push(await input.text());
        return new Response(null, { status: n++ === 0 ? 503 : 200 });
      },
      { sleep: async () => {}, random: () => 0 },
    );
    const res = await retrying(
      new Request('https://api.openai.com/v1/chat/completions', { method: 'POST', body: '{"a":1}' }),
    );
    expect(res.status).toBe(200);
    expect(bodies).toEqual(['{"a":1}', '{"a":1}']);
  });

  it('checks its options where they enter', () => {
    expect(() => withRetry(async () => 1, { maxAttempts: 0 })).toThrow(
      'Expected `maxAttempts` to be a number >= 1.',
    );
    expect(() => withRetry(async () => 1, { baseDelayMs: -1 })).toThrow(
      'Expected `baseDelayMs` to be a number >= 0.',
    );
  });
});

describe('withRetry with real parts', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });

  it('each attempt through meter.fetch is its own record, linked by retry_group; each span links to the attempt before', async () => {
    sim.reset();
    const records: CallRecord[] = [];
    const tel = createTestTelemetry();
    const meter = createMeter({
      database: false,
      prices: TEST_PRICES,
      onRecord: (r) => records.push(r),
      tracerProvider: tel.tracerProvider,
    });
    sim.enqueue({ fault: 'rate_limit', retryAfterS: 0.01 }, { fault: 'server_error' }, {});
    const fetch = withRetry(meter.fetch, { meter, random: () => 0, maxAttempts: 4 });
    const openai = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', fetch, maxRetries: 0 });
    const res = await meter.run({ user: 'alice' }, () =>
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
    );
    expect(res.choices).toHaveLength(1);
    await meter.flush();
    expect(sim.calls.map((c) => c.status)).toEqual([429, 500, 200]);
    expect(records.map((r) => [r.outcome, r.errorType, r.attribution.tags.retry_attempt])).toEqual([
      ['error', 'rate_limited', '1'],
      ['error', 'server_error', '2'],
      ['ok', null, '3'],
    ]);
    const groups = new Set(records.map((r) => r.attribution.tags.retry_group));
    expect(groups.size, 'one group for the three attempts').toBe(1);
    expect(records.every((r) => r.attribution.user === 'alice')).toBe(true);
    const spans = tel.llmSpans();
    expect(spans.map((s) => s.spanContext().spanId)).toEqual(records.map((r) => r.spanId));
    expect(spans[0]!.links, 'the first attempt links nowhere').toEqual([]);
    for (const i of [1, 2]) {
      expect(spans[i]!.links.map((l) => [l.context.spanId, l.attributes?.['llm_meter.link.type']])).toEqual([
        [spans[i - 1]!.spanContext().spanId, 'previous_attempt'],
      ]);
    }
    await meter.shutdown();
    await tel.shutdown();
  });

  it('a wait named only in the error body (Gemini RetryInfo) is honoured, read by the adapter', async () => {
    sim.reset();
    const meter = createMeter({ database: false, prices: TEST_PRICES });
    sim.enqueue({ fault: 'rate_limit', retryAfterS: 0.35 }, {});
    const waits: Array<[number, string]> = [];
    const fetch = withRetry(meter.fetch, {
      meter,
      random: () => 0,
      sleep: async () => {},
      onRetry: (e) => waits.push([e.delayMs, e.delaySource]),
    });
    const res = await fetch(`${sim.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': 'test-key' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] }),
    });
    expect(res.status).toBe(200);
    await res.json();
    expect(sim.calls.map((c) => c.status)).toEqual([429, 200]);
    const first = sim.calls[0]!;
    expect(first.outcome).toBe('fault');
    // random: () => 0 would make a backoff wait 0 ms: 350 ms can only come from the body.
    expect(waits).toEqual([[350, 'server']]);
    await meter.shutdown();
  });

  it("a wait named only in a provider's own header (Azure's x-rate-limit-reset-tokens) is honoured", async () => {
    sim.reset();
    const meter = createMeter({ database: false, prices: TEST_PRICES });
    sim.enqueue({ fault: 'rate_limit', retryAfterS: 0.4 }, {});
    const waits: Array<[number, string]> = [];
    const fetch = withRetry(meter.fetch, {
      meter,
      random: () => 0,
      sleep: async () => {},
      onRetry: (e) => waits.push([e.delayMs, e.delaySource]),
    });
    const res = await fetch(`${sim.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': 'test-key' },
      body: JSON.stringify({ messages: chatMessages }),
    });
    expect(res.status).toBe(200);
    await res.json();
    expect(sim.calls.map((c) => c.status)).toEqual([429, 200]);
    expect(waits).toEqual([[400, 'server']]);
    await meter.shutdown();
  });

  it('wraps an SDK call too: its APIError statuses and headers decide', async () => {
    sim.reset();
    sim.enqueue({ fault: 'overloaded' }, { fault: 'bad_request' });
    const openai = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const create = withRetry(
      (body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming) => openai.chat.completions.create(body),
      {
        random: () => 0,
      },
    );
    const error = await caught(() => create({ model: 'gpt-4o-mini', messages: chatMessages }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(
      sim.calls.map((c) => c.status),
      '503 retried, then the 400 ends it',
    ).toEqual([503, 400]);
  });
});
