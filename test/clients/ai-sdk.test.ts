import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, type LanguageModel, streamText } from 'ai';
import { describe, expect, it } from 'vitest';
import type { Behavior } from '../../src/sim/index.js';
import { expectTruth, useProbe } from '../helpers/metered.js';

/**
 * The Vercel AI SDK (`ai` with `@ai-sdk/openai` and `@ai-sdk/anthropic`, each given
 * `fetch: meter.fetch`): `generateText` and `streamText` give the same text and usage with and
 * without the meter, and the record's tokens and cost are the simulator's.
 */

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'claude-haiku-4-5': { input: 1, output: 5, cachedInput: 0.1, cacheWrite: 1.25 },
};
const prompt = 'Tell me about the quick brown fox.';
const system = 'You are terse.';

const env = useProbe({ prices: PRICES });

type Fetch = typeof globalThis.fetch;
const MODELS: { name: string; model: (fetch?: Fetch) => LanguageModel; price: keyof typeof PRICES }[] = [
  {
    name: 'openai.chat (chat completions)',
    model: (fetch) =>
      createOpenAI({ baseURL: `${env.sim.url}/v1`, apiKey: 'sk-test', ...(fetch ? { fetch } : {}) }).chat(
        'gpt-4o-mini',
      ),
    price: 'gpt-4o-mini',
  },
  {
    name: 'openai (responses)',
    model: (fetch) =>
      createOpenAI({ baseURL: `${env.sim.url}/v1`, apiKey: 'sk-test', ...(fetch ? { fetch } : {}) })(
        'gpt-4o-mini',
      ),
    price: 'gpt-4o-mini',
  },
  {
    name: 'anthropic (messages)',
    model: (fetch) =>
      createAnthropic({ baseURL: `${env.sim.url}/v1`, apiKey: 'sk-ant-test', ...(fetch ? { fetch } : {}) })(
        'claude-haiku-4-5',
      ),
    price: 'claude-haiku-4-5',
  },
];

/** What the AI SDK hands its caller, without the per-call ids and times. */
const view = (r: { text: string; usage: unknown; finishReason: string }) => ({
  text: r.text,
  usage: r.usage,
  finishReason: r.finishReason,
});

const both = (
  behavior: Partial<Behavior>,
  run: (model: LanguageModel) => Promise<ReturnType<typeof view>>,
  make: (fetch?: Fetch) => LanguageModel,
) =>
  env.both(
    behavior,
    (fetch) => run(make(fetch)),
    (plain, result) => expect(result, 'the caller sees the same text and usage').toEqual(plain),
  );

describe.each(MODELS)('$name', ({ model, price }) => {
  it('generateText', async () => {
    const { result, record, truth } = await both(
      { outputTokens: 7, cacheReadTokens: 2 },
      async (m) => view(await generateText({ model: m, system, prompt, maxRetries: 0 })),
      model,
    );
    expect(result.usage).toMatchObject({ inputTokens: expect.any(Number), outputTokens: 7 });
    expectTruth(record, truth, PRICES[price]);
  });

  it('streamText', async () => {
    const { result, record, truth } = await both(
      { outputTokens: 9, msPerToken: 1 },
      async (m) => {
        const stream = streamText({ model: m, system, prompt, maxRetries: 0 });
        return view({
          text: await stream.text,
          usage: await stream.usage,
          finishReason: await stream.finishReason,
        });
      },
      model,
    );
    expect(result.text.split(' ')).toHaveLength(9);
    expectTruth(record, truth, PRICES[price]);
    expect(record.request.stream).toBe(true);
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
  });
});
