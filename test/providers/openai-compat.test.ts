import { describe, expect, it } from 'vitest';
import type { CallRecord, MeterOptions } from '../../src/index.js';
import type { Behavior, SimCall, TimingReport } from '../../src/sim/index.js';
import {
  everythingExported,
  expectCancelledUsage,
  expectedCostNanos,
  post,
  readThenCancel,
  toSimulator,
  useProbe,
} from '../helpers/metered.js';

/**
 * OpenAI-compatible servers that report more than OpenAI does: Groq's, llama.cpp's and vLLM's own
 * latency split, vLLM's cumulative usage on every chunk, DeepSeek's cache hits; and Azure
 * OpenAI's deployments and stream quirks. The real hosts are addressed (host-based provider
 * detection) and the requests delivered to the simulator.
 */

const MODEL = 'test-model';
const PRICE = { input: 1, output: 2, cachedInput: 0.1 };
const AZURE_PRICE = { input: 2.5, output: 10, cachedInput: 1.25 };
const PRICES = { [MODEL]: PRICE, 'gpt-4o': AZURE_PRICE };

const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about the quick brown fox.' },
];

const env = useProbe({ prices: PRICES }, { azureDeployments: { 'prod-4o': 'gpt-4o-2024-08-06' } });
let metered: (input: string, init?: RequestInit) => Promise<Response>;

function setup(options: MeterOptions = {}): void {
  metered = env.setup(options).meter.wrapFetch(toSimulator(env.sim));
}

/** The JSON objects of a stream's `data:` lines. */
function dataObjects<T = object>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)) as T);
}

interface Server {
  report: TimingReport;
  url: string;
  provider: string;
  /** Which phases the server reports itself. */
  reports: { queue: boolean; prefill: boolean; generation: boolean };
  /** The server's usage carries reasoning tokens. */
  reasoning: boolean;
}

const SERVERS: Server[] = [
  {
    report: 'groq',
    url: 'https://api.groq.com/openai/v1/chat/completions',
    provider: 'groq',
    reports: { queue: true, prefill: true, generation: true },
    reasoning: true,
  },
  {
    report: 'llamacpp',
    url: 'http://127.0.0.1:8080/v1/chat/completions',
    provider: 'openai_compatible',
    reports: { queue: false, prefill: true, generation: true },
    reasoning: false,
  },
  {
    report: 'vllm',
    url: 'http://vllm.internal:8000/v1/chat/completions',
    provider: 'openai_compatible',
    reports: { queue: true, prefill: true, generation: true },
    reasoning: true,
  },
  {
    report: 'deepseek',
    url: 'https://api.deepseek.com/chat/completions',
    provider: 'deepseek',
    reports: { queue: false, prefill: false, generation: false },
    reasoning: true,
  },
];

/** A stream from vLLM that asks for the cumulative usage on every chunk. */
const vllmContinuousUsage = (behavior: Partial<Behavior>) =>
  metered(
    SERVERS[2]!.url,
    post(
      {
        model: MODEL,
        messages,
        stream: true,
        stream_options: { include_usage: true, continuous_usage_stats: true },
      },
      { report: 'vllm', ...behavior },
    ),
  );

const timed = {
  queueMs: 10,
  prefillMsPerToken: 0.5,
  msPerToken: 4,
  outputTokens: 5,
  reasoningTokens: 2,
  cacheReadTokens: 3,
};

/** Each phase a server reports equals the simulator's planned phase (to the float). */
function expectSplit(record: CallRecord, truth: SimCall, reports: Server['reports']): void {
  const truthMs = {
    queue: truth.queueMs,
    prefill: truth.prefillMs,
    generation: truth.reasoningMs + truth.generationMs,
  };
  for (const phase of ['queue', 'prefill', 'generation'] as const) {
    const component = record.timing[phase];
    if (reports[phase]) {
      expect(component?.source, `${phase} source`).toBe('provider');
      expect(component?.ms, `${phase} ms`).toBeCloseTo(truthMs[phase], 6);
    } else {
      expect(component?.source, `${phase} source`).not.toBe('provider');
    }
  }
}

describe.each(SERVERS)('$report ($provider)', (server) => {
  it.each([false, true])(
    'stream: %s — exact usage, cache hits priced as cache, reported split',
    async (stream) => {
      setup();
      const res = await metered(
        server.url,
        post({ model: MODEL, messages, stream }, { ...timed, report: server.report }),
      );
      const text = await res.text();
      const record = await env.probe.record();
      const truth = env.sim.calls[0]!;
      if (stream) {
        // The usage the meter asked for is hidden from the caller (Groq's own x_groq.usage is not).
        const chunks = dataObjects(text);
        expect(chunks.every((c) => !('usage' in c))).toBe(true);
        expect(text.trim().endsWith('data: [DONE]')).toBe(true);
      }
      expect(record.provider).toBe(server.provider);
      expect(record.usage).toEqual({
        inputTokens: truth.inputTokens,
        outputTokens: truth.outputTokens,
        cacheReadTokens: 3,
        cacheWriteTokens: 0,
        reasoningTokens: server.reasoning ? 2 : 0,
        source: 'provider',
      });
      expect(truth.outputTokens).toBe(7);
      expect(record.cost.cacheReadNanos).toBe(Math.round(3 * 100));
      expect(record.cost.totalNanos).toBe(expectedCostNanos(PRICE, record.usage!));
      expectSplit(record, truth, server.reports);
    },
  );
});

describe('server-reported figures when the call goes wrong', () => {
  const groq = SERVERS[0]!;

  it('groq 429: rate_limited with the retry hint', async () => {
    setup();
    const res = await metered(
      groq.url,
      post({ model: MODEL, messages }, { fault: 'rate_limit', retryAfterS: 2 }),
    );
    expect(res.status).toBe(429);
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'rate_limited',
      errorCode: 'rate_limit_exceeded',
      retryAfterMs: 2000,
      usage: null,
    });
  });

  it.each(SERVERS)('$report: a cut stream has no reported split and is estimated', async (server) => {
    setup();
    const res = await metered(
      server.url,
      post(
        { model: MODEL, messages, stream: true },
        { report: server.report, fault: 'cut_stream', faultAfterTokens: 3 },
      ),
    );
    await expect(res.text()).rejects.toThrow();
    const record = await env.probe.record();
    const truth = await env.sim.waitForCall();
    expect(record).toMatchObject({ outcome: 'error', errorType: 'stream_interrupted' });
    expect(record.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 3,
      source: 'estimated',
    });
    expect(record.timing.prefill?.source).not.toBe('provider');
  });

  it('vllm: a cancelled stream with continuous usage keeps the last cumulative figure', async () => {
    setup();
    const res = await vllmContinuousUsage({ outputTokens: 200, msPerToken: 15 });
    const text = await readThenCancel(res, (t) => (t.match(/"content":"[^"]+"/g) ?? []).length >= 3);
    const received = (text.match(/"content":"[^"]+"/g) ?? []).length;
    const truth = await env.sim.waitForCall((c) => c.clientClosed);
    const record = await env.probe.record();
    expectCancelledUsage(record, truth, received);
  });

  it('vllm continuous_usage_stats: cumulative usage on every chunk is never added up', async () => {
    setup();
    const res = await vllmContinuousUsage({ outputTokens: 6 });
    const text = await res.text();
    // The caller asked for the usage and sees it on every chunk.
    const usages = dataObjects<{ usage: { completion_tokens: number } }>(text).map(
      (chunk) => chunk.usage.completion_tokens,
    );
    expect(usages).toEqual([0, 1, 2, 3, 4, 5, 6, 6, 6]);
    const record = await env.probe.record();
    expect(record.usage).toMatchObject({ inputTokens: env.sim.calls[0]!.inputTokens, outputTokens: 6 });
  });
});

describe('Azure OpenAI', () => {
  const classic =
    'https://myres.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21';
  const v1 = 'https://myres.openai.azure.com/openai/v1/chat/completions';
  const azureKey = 'azure-test-secret-key-abcdef0123';
  const azurePost = (body: Record<string, unknown>, behavior: Partial<Behavior> = {}) =>
    post(body, behavior, { 'api-key': azureKey });

  it.each([
    { name: 'classic deployment', url: classic, body: {} },
    { name: 'v1 (deployment in `model`)', url: v1, body: { model: 'prod-4o' } },
  ])('$name: priced by the model in the response', async ({ url, body }) => {
    setup();
    const res = await metered(url, azurePost({ ...body, messages }, { outputTokens: 4, cacheReadTokens: 2 }));
    const json = (await res.json()) as { model: string };
    expect(json.model).toBe('gpt-4o-2024-08-06');
    const record = await env.probe.record();
    expect(env.sim.calls[0]!.provider).toBe('azure');
    expect(record).toMatchObject({
      provider: 'azure.ai.openai',
      requestModel: 'prod-4o',
      responseModel: 'gpt-4o-2024-08-06',
      cost: { pricedAs: 'gpt-4o', source: 'override' },
    });
    expect(record.cost.totalNanos).toBe(expectedCostNanos(AZURE_PRICE, record.usage!));
  });

  it('a stream opens with an empty-choices prompt_filter_results chunk that reaches the caller', async () => {
    setup();
    const res = await metered(classic, azurePost({ messages, stream: true }, { outputTokens: 4 }));
    const events = dataObjects<Record<string, unknown>>(await res.text());
    expect(events[0]).toMatchObject({
      choices: [],
      id: '',
      model: '',
      prompt_filter_results: [{ prompt_index: 0 }],
    });
    // A content-filter chunk without `delta` is passed on and tolerated.
    expect(
      events.some((e) => (e.choices as { delta?: unknown }[])[0]?.delta === undefined && e.id !== ''),
    ).toBe(true);
    // The usage chunk the meter asked for is not.
    expect(events.every((e) => !('usage' in e))).toBe(true);
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    expect(record).toMatchObject({
      outcome: 'ok',
      responseModel: 'gpt-4o-2024-08-06',
      usage: { inputTokens: truth.inputTokens, outputTokens: 4, source: 'provider' },
      cost: { pricedAs: 'gpt-4o' },
    });
    expect(record.responseId).toMatch(/^chatcmpl-/);
  });

  it('429 with x-rate-limit-reset-tokens and a string error code', async () => {
    setup();
    const res = await metered(classic, azurePost({ messages }, { fault: 'rate_limit', retryAfterS: 3 }));
    expect(res.headers.get('retry-after')).toBeNull();
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'rate_limited',
      errorCode: '429',
      retryAfterMs: 3000,
      rateLimit: { resetTokensMs: 3000 },
    });
  });

  it('a content filter: 400 on the prompt, a finish reason in a stream', async () => {
    setup();
    const refused = await metered(classic, azurePost({ messages }, { fault: 'content_filter' }));
    expect(refused.status).toBe(400);
    await refused.text();
    const stream = await metered(
      classic,
      azurePost(
        { messages, stream: true },
        { fault: 'content_filter', faultAfterTokens: 2, outputTokens: 6 },
      ),
    );
    await stream.text();
    await env.probe.meter.flush();
    const [prompt, streamed] = env.probe.records;
    expect(prompt).toMatchObject({
      outcome: 'error',
      errorType: 'content_filter',
      errorCode: 'content_filter',
    });
    expect(streamed).toMatchObject({
      outcome: 'error',
      errorType: 'content_filter',
      finishReasons: ['content_filter'],
      usage: { outputTokens: 2, source: 'provider' },
    });
  });

  it('a cut stream and a cancelled one', async () => {
    setup();
    const cut = await metered(
      classic,
      azurePost({ messages, stream: true }, { fault: 'cut_stream', faultAfterTokens: 2 }),
    );
    await expect(cut.text()).rejects.toThrow();
    await env.probe.meter.flush();
    expect(env.probe.records[0]).toMatchObject({
      outcome: 'error',
      errorType: 'stream_interrupted',
      usage: { outputTokens: 2, inputTokens: env.sim.calls[0]!.inputTokens },
    });
    env.sim.reset();
    const res = await metered(
      classic,
      azurePost({ messages, stream: true }, { outputTokens: 200, msPerToken: 15 }),
    );
    const text = await readThenCancel(res, (t) => (t.match(/"content":"[^"]+"/g) ?? []).length >= 2);
    const received = (text.match(/"content":"[^"]+"/g) ?? []).length;
    const truth = await env.sim.waitForCall((c) => c.clientClosed);
    await env.probe.meter.flush();
    expectCancelledUsage(env.probe.records[1]!, truth, received);
  });

  it('the api-key is hashed, never exported', async () => {
    setup({ apiKeyHashSalt: 'salt' });
    await (await metered(classic, azurePost({ messages }))).text();
    const record = await env.probe.record();
    expect(record.attribution.apiKeyHash).toMatch(/^[0-9a-f]{12}$/);
    expect(await everythingExported(env.probe)).not.toContain(azureKey);
  });
});
