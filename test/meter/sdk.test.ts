import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { MeterOptions } from '../../src/index.js';
import { useHarness } from '../helpers/harness.js';
import { assertSpan } from '../helpers/otel.js';

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'claude-sonnet-4-5': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
};
/** Nano-dollars per token for a USD-per-1M price. */
const n = (usdPerMillion: number) => usdPerMillion * 1000;

const env = useHarness();

/** A harness with this file's prices. */
const setup = (options: MeterOptions = {}) => env.harness({ prices: PRICES, ...options });

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Tell me about the quick brown fox.' },
];

describe('OpenAI chat completions through meter.fetch', () => {
  it('non-streaming: SDK result unchanged, span tokens and cost exact', async () => {
    const h = setup();
    env.sim.enqueue({ outputTokens: 7, cacheReadTokens: 5 });
    const res = await h.openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 50 });
    await h.meter.flush();
    const truth = env.sim.calls[0]!;
    expect(res.choices[0]!.message.content?.split(' ').filter(Boolean)).toHaveLength(7);
    expect(res.usage?.prompt_tokens).toBe(truth.inputTokens);
    const [span] = h.tel.llmSpans();
    assertSpan(span, {
      name: 'chat gpt-4o-mini',
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai_compatible',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini',
        'gen_ai.request.max_tokens': 50,
        'gen_ai.request.stream': false,
        'gen_ai.usage.input_tokens': truth.inputTokens,
        'gen_ai.usage.output_tokens': 7,
        'gen_ai.usage.cache_read.input_tokens': 5,
        'gen_ai.response.finish_reasons': ['stop'],
        'server.address': '127.0.0.1',
        'llm_meter.usage.source': 'provider',
      },
    });
    const expectedNanos = (truth.inputTokens - 5) * n(0.15) + 5 * n(0.075) + 7 * n(0.6);
    expect(h.records[0]!.cost.totalNanos).toBe(Math.round(expectedNanos));
    expect(span!.attributes['gen_ai.usage.cost']).toBeCloseTo(expectedNanos / 1e9, 12);
    expect(h.records[0]!.outcome).toBe('ok');
  });

  it('streaming without include_usage: exact usage, and the caller sees the stream it asked for', async () => {
    const h = setup();
    env.sim.enqueue({ outputTokens: 9 });
    const stream = await h.openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    await h.meter.flush();
    const truth = env.sim.calls[0]!;
    // The simulator was asked for usage...
    expect(
      (truth.body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage,
    ).toBe(true);
    // ...but the caller never sees it: no usage chunk, no `usage: null` keys.
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text.trim().split(' ')).toHaveLength(9);
    const record = h.records[0]!;
    expect(record.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 9,
      source: 'provider',
    });
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(record.timing.generation?.source).toBe('observed');
    assertSpan(h.tel.llmSpans()[0], {
      attributes: { 'gen_ai.request.stream': true, 'gen_ai.usage.output_tokens': 9 },
    });
  });

  it('streaming with include_usage asked by the caller: the usage chunk reaches the caller', async () => {
    const h = setup();
    env.sim.enqueue({ outputTokens: 4 });
    const stream = await h.openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    await h.meter.flush();
    expect(usage?.completion_tokens).toBe(4);
    expect(h.records[0]!.usage?.outputTokens).toBe(4);
  });

  it('with streamUsage: false the request is untouched and usage is estimated', async () => {
    const h = setup({ streamUsage: false });
    env.sim.enqueue({ outputTokens: 6 });
    const stream = await h.openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _ of stream) {
      // drain
    }
    await h.meter.flush();
    const truth = env.sim.calls[0]!;
    expect((truth.body as { stream_options?: unknown }).stream_options).toBeUndefined();
    expect(h.records[0]!.usage).toMatchObject({
      source: 'estimated',
      outputTokens: 6,
      inputTokens: truth.inputTokens,
    });
  });

  it('tool calls stream: counted as output and they mark the first token', async () => {
    const h = setup();
    env.sim.enqueue({ toolCalls: 2, outputTokens: 6 });
    const stream = await h.openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      tools: [
        { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } },
      ],
    });
    for await (const _ of stream) {
      // drain
    }
    await h.meter.flush();
    const record = h.records[0]!;
    expect(record.toolCalls).toBe(2);
    expect(record.request.toolCount).toBe(1);
    expect(record.timing.firstTokenMs).not.toBeNull();
    expect(record.finishReasons).toEqual(['tool_calls']);
    expect(record.usage?.outputTokens).toBe(env.sim.calls[0]!.outputTokens);
  });
});

describe('OpenAI responses and embeddings', () => {
  it('responses stream: usage from response.completed', async () => {
    const h = setup();
    env.sim.enqueue({ outputTokens: 5, reasoningTokens: 3, cacheReadTokens: 2 });
    const stream = await h.openai.responses.create({ model: 'gpt-4o-mini', input: 'Say hi', stream: true });
    let completed = false;
    for await (const event of stream) if (event.type === 'response.completed') completed = true;
    await h.meter.flush();
    expect(completed).toBe(true);
    const truth = env.sim.calls[0]!;
    expect(h.records[0]!.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: truth.outputTokens,
      reasoningTokens: 3,
      cacheReadTokens: 2,
      source: 'provider',
    });
  });

  it('embeddings: input tokens and cost', async () => {
    const h = setup();
    const res = await h.openai.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['a b c', 'd e'],
    });
    await h.meter.flush();
    expect(res.data).toHaveLength(2);
    const truth = env.sim.calls[0]!;
    expect(h.records[0]).toMatchObject({
      operation: 'embeddings',
      usage: { inputTokens: truth.inputTokens },
    });
    expect(h.records[0]!.cost.totalNanos).toBe(Math.round(truth.inputTokens * n(0.02)));
    assertSpan(h.tel.llmSpans()[0], { name: 'embeddings text-embedding-3-small' });
  });
});

describe('Anthropic messages through meter.fetch', () => {
  it('non-streaming with cache reads and writes: input includes them, each priced at its own rate', async () => {
    const h = setup();
    env.sim.enqueue({ outputTokens: 8, cacheReadTokens: 10, cacheWriteTokens: 4 });
    const msg = await h.anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Tell me about the quick brown fox and the lazy dog.' }],
    });
    await h.meter.flush();
    const truth = env.sim.calls[0]!;
    expect(msg.usage.input_tokens).toBe(truth.inputTokens - 14);
    const record = h.records[0]!;
    expect(record.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 8,
      cacheReadTokens: 10,
      cacheWriteTokens: 4,
    });
    const expected = (truth.inputTokens - 14) * n(3) + 10 * n(0.3) + 4 * n(3.75) + 8 * n(15);
    expect(record.cost.totalNanos).toBe(Math.round(expected));
    assertSpan(h.tel.llmSpans()[0], {
      name: 'chat claude-sonnet-4-5',
      attributes: {
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.usage.input_tokens': truth.inputTokens,
        'gen_ai.usage.cache_read.input_tokens': 10,
        'gen_ai.usage.cache_creation.input_tokens': 4,
        'gen_ai.response.finish_reasons': ['end_turn'],
      },
    });
  });

  it('streaming: message_start plus cumulative message_delta, never added twice', async () => {
    const h = setup();
    env.sim.enqueue({ outputTokens: 11, cacheReadTokens: 3 });
    const final = await h.anthropic.messages
      .stream({
        model: 'claude-sonnet-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Hello there' }],
      })
      .finalMessage();
    await h.meter.flush();
    expect(final.usage.output_tokens).toBe(11);
    const truth = env.sim.calls[0]!;
    expect(h.records[0]!.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 11,
      cacheReadTokens: 3,
    });
  });

  it('tool use stream: input_json_delta counts as output', async () => {
    const h = setup();
    env.sim.enqueue({ toolCalls: 1, outputTokens: 5 });
    await h.anthropic.messages
      .stream({
        model: 'claude-sonnet-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Weather?' }],
        tools: [{ name: 'weather', input_schema: { type: 'object', properties: {} } }],
      })
      .finalMessage();
    await h.meter.flush();
    expect(h.records[0]).toMatchObject({ toolCalls: 1, finishReasons: ['tool_use'] });
    expect(h.records[0]!.timing.firstTokenMs).not.toBeNull();
  });
});

describe('pass-through', () => {
  it('a call that is not an LLM API gets the very same response and no span', async () => {
    const h = setup();
    const res = await h.meter.fetch(`${env.sim.url}/health`, { method: 'GET' });
    const res2 = await h.meter.fetch(`${env.sim.url}/v1/other`, { method: 'POST', body: '{}' });
    await h.meter.flush();
    expect(res.status).toBe(404);
    expect(res2.status).toBe(404);
    expect(h.tel.llmSpans()).toHaveLength(0);
    expect(h.records).toHaveLength(0);
  });
});
