import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../src/index.js';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { assertSpan, createTestTelemetry } from './helpers/otel.js';

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'claude-sonnet-4-5': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
};
/** Nano-dollars per token for a USD-per-1M price. */
const n = (usdPerMillion: number) => usdPerMillion * 1000;

let sim: Simulator;
let tel: ReturnType<typeof createTestTelemetry>;
let records: CallRecord[];
let meter: ReturnType<typeof createMeter>;

beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(async () => {
  await sim.close();
});

function setup(options: Parameters<typeof createMeter>[0] = {}) {
  tel = createTestTelemetry();
  records = [];
  meter = createMeter({
    database: false,
    prices: PRICES,
    tracerProvider: tel.tracerProvider,
    meterProvider: tel.meterProvider,
    onRecord: (r) => records.push(r),
    ...options,
  });
  const openai = new OpenAI({
    baseURL: `${sim.url}/v1`,
    apiKey: 'sk-test-openai-key',
    fetch: meter.fetch,
    maxRetries: 0,
  });
  const anthropic = new Anthropic({
    baseURL: sim.url,
    apiKey: 'sk-ant-test-key',
    fetch: meter.fetch,
    maxRetries: 0,
  });
  return { openai, anthropic };
}

afterEach(async () => {
  await meter?.shutdown();
  await tel?.shutdown();
  sim.reset();
});

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Tell me about the quick brown fox.' },
];

describe('OpenAI chat completions through meter.fetch', () => {
  it('non-streaming: SDK result unchanged, span tokens and cost exact', async () => {
    const { openai } = setup();
    sim.enqueue({ outputTokens: 7, cacheReadTokens: 5 });
    const res = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 50 });
    await meter.flush();
    const truth = sim.calls[0]!;
    expect(res.choices[0]!.message.content?.split(' ').filter(Boolean)).toHaveLength(7);
    expect(res.usage?.prompt_tokens).toBe(truth.inputTokens);
    const [span] = tel.llmSpans();
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
    expect(records[0]!.cost.totalNanos).toBe(Math.round(expectedNanos));
    expect(span!.attributes['gen_ai.usage.cost']).toBeCloseTo(expectedNanos / 1e9, 12);
    expect(records[0]!.outcome).toBe('ok');
  });

  it('streaming without include_usage: exact usage, and the caller sees the stream it asked for', async () => {
    const { openai } = setup();
    sim.enqueue({ outputTokens: 9 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    await meter.flush();
    const truth = sim.calls[0]!;
    // The simulator was asked for usage...
    expect(
      (truth.body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage,
    ).toBe(true);
    // ...but the caller never sees it: no usage chunk, no `usage: null` keys.
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text.trim().split(' ')).toHaveLength(9);
    const record = records[0]!;
    expect(record.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 9,
      source: 'provider',
    });
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(record.timing.generation?.source).toBe('observed');
    assertSpan(tel.llmSpans()[0], {
      attributes: { 'gen_ai.request.stream': true, 'gen_ai.usage.output_tokens': 9 },
    });
  });

  it('streaming with include_usage asked by the caller: the usage chunk reaches the caller', async () => {
    const { openai } = setup();
    sim.enqueue({ outputTokens: 4 });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    await meter.flush();
    expect(usage?.completion_tokens).toBe(4);
    expect(records[0]!.usage?.outputTokens).toBe(4);
  });

  it('with streamUsage: false the request is untouched and usage is estimated', async () => {
    const { openai } = setup({ streamUsage: false });
    sim.enqueue({ outputTokens: 6 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _ of stream) {
      // drain
    }
    await meter.flush();
    const truth = sim.calls[0]!;
    expect((truth.body as { stream_options?: unknown }).stream_options).toBeUndefined();
    expect(records[0]!.usage).toMatchObject({
      source: 'estimated',
      outputTokens: 6,
      inputTokens: truth.inputTokens,
    });
  });

  it('tool calls stream: counted as output and they mark the first token', async () => {
    const { openai } = setup();
    sim.enqueue({ toolCalls: 2, outputTokens: 6 });
    const stream = await openai.chat.completions.create({
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
    await meter.flush();
    const record = records[0]!;
    expect(record.toolCalls).toBe(2);
    expect(record.request.toolCount).toBe(1);
    expect(record.timing.firstTokenMs).not.toBeNull();
    expect(record.finishReasons).toEqual(['tool_calls']);
    expect(record.usage?.outputTokens).toBe(sim.calls[0]!.outputTokens);
  });
});

describe('OpenAI responses and embeddings', () => {
  it('responses stream: usage from response.completed', async () => {
    const { openai } = setup();
    sim.enqueue({ outputTokens: 5, reasoningTokens: 3, cacheReadTokens: 2 });
    const stream = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Say hi', stream: true });
    let completed = false;
    for await (const event of stream) if (event.type === 'response.completed') completed = true;
    await meter.flush();
    expect(completed).toBe(true);
    const truth = sim.calls[0]!;
    expect(records[0]!.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: truth.outputTokens,
      reasoningTokens: 3,
      cacheReadTokens: 2,
      source: 'provider',
    });
  });

  it('embeddings: input tokens and cost', async () => {
    const { openai } = setup();
    const res = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['a b c', 'd e'] });
    await meter.flush();
    expect(res.data).toHaveLength(2);
    const truth = sim.calls[0]!;
    expect(records[0]).toMatchObject({ operation: 'embeddings', usage: { inputTokens: truth.inputTokens } });
    expect(records[0]!.cost.totalNanos).toBe(Math.round(truth.inputTokens * n(0.02)));
    assertSpan(tel.llmSpans()[0], { name: 'embeddings text-embedding-3-small' });
  });
});

describe('Anthropic messages through meter.fetch', () => {
  it('non-streaming with cache reads and writes: input includes them, each priced at its own rate', async () => {
    const { anthropic } = setup();
    sim.enqueue({ outputTokens: 8, cacheReadTokens: 10, cacheWriteTokens: 4 });
    const msg = await anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Tell me about the quick brown fox and the lazy dog.' }],
    });
    await meter.flush();
    const truth = sim.calls[0]!;
    expect(msg.usage.input_tokens).toBe(truth.inputTokens - 14);
    const record = records[0]!;
    expect(record.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 8,
      cacheReadTokens: 10,
      cacheWriteTokens: 4,
    });
    const expected = (truth.inputTokens - 14) * n(3) + 10 * n(0.3) + 4 * n(3.75) + 8 * n(15);
    expect(record.cost.totalNanos).toBe(Math.round(expected));
    assertSpan(tel.llmSpans()[0], {
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
    const { anthropic } = setup();
    sim.enqueue({ outputTokens: 11, cacheReadTokens: 3 });
    const final = await anthropic.messages
      .stream({
        model: 'claude-sonnet-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Hello there' }],
      })
      .finalMessage();
    await meter.flush();
    expect(final.usage.output_tokens).toBe(11);
    const truth = sim.calls[0]!;
    expect(records[0]!.usage).toMatchObject({
      inputTokens: truth.inputTokens,
      outputTokens: 11,
      cacheReadTokens: 3,
    });
  });

  it('tool use stream: input_json_delta counts as output', async () => {
    const { anthropic } = setup();
    sim.enqueue({ toolCalls: 1, outputTokens: 5 });
    await anthropic.messages
      .stream({
        model: 'claude-sonnet-4-5',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'Weather?' }],
        tools: [{ name: 'weather', input_schema: { type: 'object', properties: {} } }],
      })
      .finalMessage();
    await meter.flush();
    expect(records[0]).toMatchObject({ toolCalls: 1, finishReasons: ['tool_use'] });
    expect(records[0]!.timing.firstTokenMs).not.toBeNull();
  });
});

describe('pass-through', () => {
  it('a call that is not an LLM API gets the very same response and no span', async () => {
    setup();
    const res = await meter.fetch(`${sim.url}/health`, { method: 'GET' });
    const res2 = await meter.fetch(`${sim.url}/v1/other`, { method: 'POST', body: '{}' });
    await meter.flush();
    expect(res.status).toBe(404);
    expect(res2.status).toBe(404);
    expect(tel.llmSpans()).toHaveLength(0);
    expect(records).toHaveLength(0);
  });
});
