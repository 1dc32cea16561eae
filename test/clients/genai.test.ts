import { GoogleGenAI } from '@google/genai';
import { describe, expect, it } from 'vitest';
import type { Behavior } from '../../src/sim/index.js';
import { collect, expectCancelledUsage, expectTruth, useProbe } from '../helpers/metered.js';
import { assertSpan } from '../helpers/otel.js';

/**
 * `@google/genai` takes a custom fetch (`httpOptions.fetch`); it also works through
 * `meter.instrumentGlobalFetch()`. Each call is made without and with the meter: the same result
 * for the client, the simulator's tokens and cost in the record.
 */

const MODEL = 'gemini-2.5-flash';
const PRICE = { input: 0.3, output: 2.5, cachedInput: 0.03 };
const EMBED_PRICE = { input: 0.15, output: 0 };
const PRICES = { [MODEL]: PRICE, 'gemini-embedding-001': EMBED_PRICE };
const config = { maxOutputTokens: 100, temperature: 0.4, systemInstruction: 'You are terse.' };
const contents = 'Tell me about the quick brown fox.';

const env = useProbe({ prices: PRICES });

type Options = { vertexai?: boolean };
const genai = (fetch?: typeof globalThis.fetch, options: Options = {}) =>
  new GoogleGenAI({
    apiKey: 'AIzaSy-test-key',
    ...options,
    httpOptions: { baseUrl: env.sim.url, ...(fetch ? { fetch } : {}) },
  });

const both = <T>(
  behavior: Partial<Behavior>,
  run: (client: GoogleGenAI) => Promise<T>,
  options: Options = {},
) => env.both(behavior, (fetch) => run(genai(fetch, options)));

describe('models.generateContent', () => {
  it('thoughts and cache reads in usageMetadata, priced exactly', async () => {
    const { result, record, truth } = await both(
      { outputTokens: 7, reasoningTokens: 5, cacheReadTokens: 4 },
      (c) => c.models.generateContent({ model: MODEL, contents, config }),
    );
    expect(result.text?.split(' ')).toHaveLength(7);
    expect(result.usageMetadata?.thoughtsTokenCount).toBe(5);
    expectTruth(record, truth, PRICE);
    expect(record).toMatchObject({
      provider: 'gcp.gemini',
      operation: 'generate_content',
      request: { model: MODEL, maxTokens: 100, temperature: 0.4, stream: false },
    });
    assertSpan(env.probe.tel.llmSpans()[0], { name: `generate_content ${MODEL}` });
  });

  it('function calls', async () => {
    const tools = [{ functionDeclarations: [{ name: 'lookup', description: 'Look up a fact' }] }];
    const { result, record, truth } = await both({ toolCalls: 2, outputTokens: 6 }, (c) =>
      c.models.generateContent({ model: MODEL, contents, config: { ...config, tools } }),
    );
    expect(result.functionCalls).toHaveLength(2);
    expect(record).toMatchObject({ toolCalls: 2, request: { toolCount: 1 } });
    expectTruth(record, truth, PRICE);
  });

  it('on Vertex AI (express mode, API key)', async () => {
    const { record, truth } = await both(
      { outputTokens: 3 },
      (c) => c.models.generateContent({ model: MODEL, contents }),
      { vertexai: true },
    );
    expect(env.sim.calls[1]!.provider).toBe('vertex');
    expect(record.provider).toBe('gcp.vertex_ai');
    expectTruth(record, truth, PRICE);
  });
});

describe('models.generateContentStream', () => {
  it('streams (SSE); usage from the last chunk', async () => {
    const { result, record, truth } = await both(
      { outputTokens: 8, reasoningTokens: 2, msPerToken: 2 },
      async (c) => collect(await c.models.generateContentStream({ model: MODEL, contents, config })),
    );
    expect(result).toHaveLength(9);
    expect(record).toMatchObject({ chunks: 9, request: { stream: true }, finishReasons: ['STOP'] });
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
    expectTruth(record, truth, PRICE);
  });

  it('a caller that aborts is cancelled; the simulator sees the close', async () => {
    const probe = env.setup();
    const abortSignal = new AbortController();
    env.sim.enqueue({ outputTokens: 200, msPerToken: 15 });
    const stream = await genai(probe.meter.fetch).models.generateContentStream({
      model: MODEL,
      contents,
      config: { abortSignal: abortSignal.signal },
    });
    let received = 0;
    await expect(
      (async () => {
        for await (const _ of stream) if (++received === 3) abortSignal.abort();
      })(),
    ).rejects.toThrow();
    const truth = await env.sim.waitForCall((c) => c.clientClosed);
    const record = await probe.record();
    expectCancelledUsage(record, truth, received);
  });

  it('an HTTP error surfaces as the SDK’s ApiError and a rate_limited record', async () => {
    const probe = env.setup();
    env.sim.enqueue({ fault: 'rate_limit' });
    const error = await genai(probe.meter.fetch)
      .models.generateContentStream({ model: MODEL, contents })
      .catch((e: unknown) => e);
    expect((error as { status?: number }).status).toBe(429);
    const record = await probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'rate_limited',
      errorCode: 'RESOURCE_EXHAUSTED',
    });
  });
});

describe('token counts and embeddings', () => {
  it('models.countTokens', async () => {
    const { result, record, truth } = await both({}, (c) => c.models.countTokens({ model: MODEL, contents }));
    expect(result.totalTokens).toBe(truth.inputTokens);
    expect(record).toMatchObject({ operation: 'count_tokens', usage: { inputTokens: truth.inputTokens } });
  });

  it('models.embedContent (batchEmbedContents): the input is counted', async () => {
    const { result, record, truth } = await both({}, (c) =>
      c.models.embedContent({ model: 'gemini-embedding-001', contents: ['the quick brown fox', 'lazy dog'] }),
    );
    expect(result.embeddings).toHaveLength(2);
    expect(record).toMatchObject({
      operation: 'embeddings',
      usage: { inputTokens: truth.inputTokens, source: 'estimated' },
    });
    expect(record.cost.totalNanos).toBe(Math.round(truth.inputTokens * EMBED_PRICE.input * 1000));
  });
});

describe('through instrumentGlobalFetch()', () => {
  it('a client without a custom fetch is metered, and restore() undoes it', async () => {
    const probe = env.setup();
    const original = globalThis.fetch;
    const restore = probe.meter.instrumentGlobalFetch();
    try {
      env.sim.enqueue({ outputTokens: 4 });
      const result = await genai().models.generateContent({ model: MODEL, contents });
      expect(result.text?.split(' ')).toHaveLength(4);
    } finally {
      restore();
    }
    expect(globalThis.fetch).toBe(original);
    const record = await probe.record();
    expectTruth(record, env.sim.calls[0]!, PRICE);
  });
});
