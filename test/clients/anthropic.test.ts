import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import type { Behavior } from '../../src/sim/index.js';
import { expectTruth, useProbe } from '../helpers/metered.js';

/**
 * The official `@anthropic-ai/sdk` client with `fetch: meter.fetch`, each call made once without
 * and once with the meter: the same result for the client, the simulator's tokens and cost in
 * the record (Anthropic's input excludes cache reads and writes; the record's includes them).
 */

const MODEL = 'claude-haiku-4-5';
const PRICE = { input: 1, output: 5, cachedInput: 0.1, cacheWrite: 1.25 };
const messages = [{ role: 'user' as const, content: 'Tell me about the quick brown fox and the lazy dog.' }];
const tools = [
  {
    name: 'weather',
    description: 'Current weather',
    input_schema: { type: 'object' as const, properties: { query: { type: 'string' } } },
  },
];

const env = useProbe({ prices: { [MODEL]: PRICE } });

const anthropic = (fetch?: typeof globalThis.fetch) =>
  new Anthropic({ baseURL: env.sim.url, apiKey: 'sk-ant-test', maxRetries: 0, ...(fetch ? { fetch } : {}) });

const both = <T>(behavior: Partial<Behavior>, run: (client: Anthropic) => Promise<T>) =>
  env.both(behavior, (fetch) => run(anthropic(fetch)));

describe('messages', () => {
  it('create, with cache reads and writes', async () => {
    const { result, record, truth } = await both(
      { outputTokens: 8, cacheReadTokens: 10, cacheWriteTokens: 4 },
      (c) => c.messages.create({ model: MODEL, max_tokens: 100, system: 'Be brief.', messages }),
    );
    expect(result.usage.input_tokens).toBe(truth.inputTokens - 14);
    expect(record.request).toMatchObject({ maxTokens: 100, stream: false });
    expectTruth(record, truth, PRICE);
  });

  it('stream to the final message', async () => {
    const { result, record, truth } = await both({ outputTokens: 11, cacheReadTokens: 3 }, (c) =>
      c.messages.stream({ model: MODEL, max_tokens: 100, messages }).finalMessage(),
    );
    expect(result.usage.output_tokens).toBe(11);
    expectTruth(record, truth, PRICE);
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
  });

  it('raw stream events (stream: true)', async () => {
    const { record, truth } = await both({ outputTokens: 6 }, async (c) => {
      const events = [];
      for await (const event of await c.messages.create({
        model: MODEL,
        max_tokens: 100,
        messages,
        stream: true,
      }))
        events.push(event);
      return events;
    });
    expect(record.chunks).toBeGreaterThan(6);
    expectTruth(record, truth, PRICE);
  });
});

describe('tool use', () => {
  it('create: tool_use blocks are counted', async () => {
    const { result, record, truth } = await both({ toolCalls: 2, outputTokens: 6 }, (c) =>
      c.messages.create({ model: MODEL, max_tokens: 100, messages, tools }),
    );
    expect(result.content.filter((b) => b.type === 'tool_use')).toHaveLength(2);
    expect(record).toMatchObject({ toolCalls: 2, finishReasons: ['tool_use'], request: { toolCount: 1 } });
    expectTruth(record, truth, PRICE);
  });

  it('stream: input_json_delta is output and marks the first token', async () => {
    const { result, record, truth } = await both({ toolCalls: 1, outputTokens: 5 }, (c) =>
      c.messages.stream({ model: MODEL, max_tokens: 100, messages, tools }).finalMessage(),
    );
    const call = result.content.find((b) => b.type === 'tool_use');
    expect(call?.input).toEqual({ query: 'the quick brown fox over' });
    expect(record).toMatchObject({ toolCalls: 1, finishReasons: ['tool_use'] });
    expect(record.timing.firstTokenMs).not.toBeNull();
    expectTruth(record, truth, PRICE);
  });
});
