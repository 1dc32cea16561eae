import OpenAI, { AzureOpenAI } from 'openai';
import { describe, expect, it } from 'vitest';
import type { Behavior } from '../../src/sim/index.js';
import { collect, expectTruth, useProbe } from '../helpers/metered.js';

/**
 * The official `openai` client with `fetch: meter.fetch`: each call is made once without the
 * meter and once with it, the simulator behaving the same; the client's own result must be the
 * same, and the record's tokens and cost the simulator's truth.
 */

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'gpt-4o': { input: 2.5, output: 10, cachedInput: 1.25 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
};
const MODEL = 'gpt-4o-mini';
const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Tell me about the quick brown fox.' },
];
const tools = [
  {
    type: 'function' as const,
    function: { name: 'lookup', parameters: { type: 'object', properties: { query: { type: 'string' } } } },
  },
];

const env = useProbe({ prices: PRICES });

/** The same call without and with the meter, through the client `make` builds. */
const both = <T>(
  behavior: Partial<Behavior>,
  make: (fetch: typeof globalThis.fetch | undefined) => OpenAI,
  run: (client: OpenAI) => Promise<T>,
) => env.both(behavior, (fetch) => run(make(fetch)));

const openai = (fetch: typeof globalThis.fetch | undefined) =>
  new OpenAI({ baseURL: `${env.sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0, ...(fetch ? { fetch } : {}) });

describe('chat completions', () => {
  it('create', async () => {
    const { result, record, truth } = await both(
      { outputTokens: 7, cacheReadTokens: 5, reasoningTokens: 2 },
      openai,
      (c) => c.chat.completions.create({ model: MODEL, messages, max_tokens: 50 }),
    );
    expect(result.usage?.prompt_tokens).toBe(truth.inputTokens);
    expectTruth(record, truth, PRICES[MODEL]);
  });

  it('stream (usage asked for and hidden by the meter)', async () => {
    const { result, record, truth } = await both({ outputTokens: 9, cacheReadTokens: 3 }, openai, async (c) =>
      collect(await c.chat.completions.create({ model: MODEL, messages, stream: true })),
    );
    expect(result.every((chunk) => chunk.usage === undefined)).toBe(true);
    expect(truth.outputTokens).toBe(9);
    expectTruth(record, truth, PRICES[MODEL]);
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
  });

  it('stream with tool calls, through the .stream() helper', async () => {
    const { result, record, truth } = await both({ toolCalls: 2, outputTokens: 6 }, openai, (c) =>
      c.chat.completions.stream({ model: MODEL, messages, tools }).finalChatCompletion(),
    );
    expect(result.choices[0]!.message.tool_calls).toHaveLength(2);
    expect(record).toMatchObject({ toolCalls: 2, finishReasons: ['tool_calls'], request: { toolCount: 1 } });
    expect(record.timing.firstTokenMs).not.toBeNull();
    expectTruth(record, truth, PRICES[MODEL]);
  });
});

describe('responses', () => {
  it('create', async () => {
    const { result, record, truth } = await both({ outputTokens: 5, reasoningTokens: 3 }, openai, (c) =>
      c.responses.create({ model: MODEL, input: 'Say hi', instructions: 'Be brief.' }),
    );
    expect(result.output_text.split(' ')).toHaveLength(5);
    expectTruth(record, truth, PRICES[MODEL]);
  });

  it('stream', async () => {
    const { result, record, truth } = await both({ outputTokens: 6, cacheReadTokens: 2 }, openai, async (c) =>
      collect(await c.responses.create({ model: MODEL, input: 'Say hi', stream: true })),
    );
    expect(result.at(-1)?.type).toBe('response.completed');
    expectTruth(record, truth, PRICES[MODEL]);
  });

  it('stream with a function call', async () => {
    const { record, truth } = await both({ toolCalls: 1, outputTokens: 4 }, openai, (c) =>
      c.responses
        .stream({
          model: MODEL,
          input: 'Look it up',
          tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object' }, strict: false }],
        })
        .finalResponse(),
    );
    expect(record.toolCalls).toBe(1);
    expectTruth(record, truth, PRICES[MODEL]);
  });
});

describe('embeddings', () => {
  it.each(['base64', 'float'] as const)('create (%s)', async (encoding_format) => {
    const { result, record, truth } = await both({}, openai, (c) =>
      c.embeddings.create({ model: 'text-embedding-3-small', input: ['a b c', 'd e'], encoding_format }),
    );
    expect(result.data).toHaveLength(2);
    expect(record.operation).toBe('embeddings');
    expectTruth(record, truth, PRICES['text-embedding-3-small']);
  });
});

describe('AzureOpenAI client (classic deployment, api-key)', () => {
  const azure = (fetch: typeof globalThis.fetch | undefined) =>
    new AzureOpenAI({
      endpoint: env.sim.url,
      apiKey: 'azure-test-key',
      apiVersion: '2024-10-21',
      deployment: 'prod-4o',
      maxRetries: 0,
      ...(fetch ? { fetch } : {}),
    });

  it('create: priced as the model the response names', async () => {
    const { result, record, truth } = await both({ outputTokens: 4 }, azure, (c) =>
      c.chat.completions.create({ model: 'prod-4o', messages }),
    );
    expect(result.model).toBe('gpt-4o-2024-08-06');
    expect(record).toMatchObject({
      provider: 'azure.ai.openai',
      requestModel: 'prod-4o',
      cost: { pricedAs: 'gpt-4o' },
    });
    expectTruth(record, truth, PRICES['gpt-4o']);
  });

  it('stream: the prompt_filter_results chunk reaches the client', async () => {
    const { result, record, truth } = await both({ outputTokens: 5 }, azure, async (c) =>
      collect(await c.chat.completions.create({ model: 'prod-4o', messages, stream: true })),
    );
    expect(result[0]!.choices).toEqual([]);
    expect(result[0]).toHaveProperty('prompt_filter_results');
    expect(record.responseModel).toBe('gpt-4o-2024-08-06');
    expectTruth(record, truth, PRICES['gpt-4o']);
  });
});
