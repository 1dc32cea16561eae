import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../src/index.js';
import { startProxy } from '../src/proxy/index.js';
import { countToolRounds } from '../src/resilience/body-rules.js';
import { createGuards, type GuardOptions, withGuards } from '../src/resilience/index.js';
import { type Simulator, startSimulator } from '../src/sim/index.js';
import { caught, chatMessages, TEST_PRICES } from './helpers/harness.js';

/**
 * Guards against cost explosions (the seed's section 7), with the official client and the
 * simulator. A refusal is answered beneath the meter in the provider's error shape, so it is
 * recorded like a provider error: its status, and the refusal type as `errorCode`.
 */

let sim: Simulator;
let meter: ReturnType<typeof createMeter>;
let records: CallRecord[];

beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(async () => {
  await sim.close();
});
afterEach(async () => {
  await meter?.shutdown();
  sim.reset();
});

function setup(options: GuardOptions) {
  records = [];
  meter = createMeter({ database: false, prices: TEST_PRICES, onRecord: (r) => records.push(r) });
  const guards = createGuards(options);
  const fetch = withGuards(meter, guards);
  return new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', fetch, maxRetries: 0 });
}

type Msg = OpenAI.Chat.ChatCompletionMessageParam;

/** A conversation holding `rounds` tool-call rounds, ending with their results. */
function agentLoop(rounds: number): Msg[] {
  const messages: Msg[] = [{ role: 'user', content: 'Find me a hotel.' }];
  for (let i = 0; i < rounds; i++) {
    messages.push({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: `call_${i}`, type: 'function', function: { name: 'search', arguments: `{"page":${i}}` } },
      ],
    });
    messages.push({ role: 'tool', tool_call_id: `call_${i}`, content: 'no results' });
  }
  return messages;
}

describe('guards through withGuards(meter)', () => {
  it('default max tokens: set on calls that set none (and recorded so), left alone otherwise', async () => {
    const openai = setup({ defaultMaxTokens: 64 });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages, max_tokens: 10 });
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: chatMessages,
      max_completion_tokens: 12,
    });
    const bodies = sim.calls.map((c) => c.body as Record<string, unknown>);
    expect(bodies.map((b) => [b.max_tokens, b.max_completion_tokens])).toEqual([
      [64, undefined],
      [10, undefined],
      [undefined, 12],
    ]);
    await meter.flush();
    expect(records.map((r) => r.request.maxTokens)).toEqual([64, 10, 12]);
  });

  it('tool-call rounds: a conversation over the cap is refused with a provider-shaped 400, recorded, never sent', async () => {
    const openai = setup({ maxToolRounds: 2 });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: agentLoop(2) });
    const error = await caught(() =>
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: agentLoop(3) }),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('tool_rounds_exceeded');
    expect((error as Error).message).toMatch(/3 tool-call rounds, over the cap of 2/);
    expect(sim.calls).toHaveLength(1);
    await meter.flush();
    expect(records[1]).toMatchObject({
      outcome: 'blocked',
      httpStatus: 400,
      errorType: 'invalid_request',
      errorCode: 'tool_rounds_exceeded',
      retryable: false,
      usage: null,
    });
    expect(records[1]!.cost.totalNanos).toBe(0);
  });

  it('per-user requests: the user over the limit gets a 429 with the wait; other users are not affected', async () => {
    let now = 0;
    const openai = setup({ perUser: { requests: 2, windowMs: 1000 }, now: () => now });
    const call = (user: string) =>
      meter.run({ user }, () =>
        openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
      );
    await call('alice');
    now = 400;
    await call('alice');
    now = 600;
    const error = await caught(() => call('alice'));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (error as InstanceType<typeof OpenAI.RateLimitError>).headers;
    expect(headers?.get('retry-after-ms'), 'until the oldest call leaves the window').toBe('400');
    expect(headers?.get('x-llm-meter-guard')).toBe('user_requests');
    await call('bob');
    now = 1000;
    await call('alice');
    expect(sim.calls).toHaveLength(4);
    await meter.flush();
    expect(records.map((r) => [r.attribution.user, r.httpStatus, r.outcome, r.errorCode])).toEqual([
      ['alice', 200, 'ok', null],
      ['alice', 200, 'ok', null],
      // Answered locally, never sent: blocked, like a budget's refusal, not a provider error.
      ['alice', 429, 'blocked', 'user_rate_limit_exceeded'],
      ['bob', 200, 'ok', null],
      ['alice', 200, 'ok', null],
    ]);
  });

  it('per-user tokens: input estimated before the call, output charged from its record', async () => {
    const now = 0;
    const openai = setup({ perUser: { tokens: 60 }, now: () => now });
    sim.enqueue({ outputTokens: 30 });
    const call = () =>
      meter.run({ user: 'carol' }, () =>
        openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
      );
    await call();
    const input = sim.calls[0]!.inputTokens;
    expect(input, 'the first call fits').toBeLessThanOrEqual(60);
    expect(input + 30 + input, 'its output pushes the same call over the limit').toBeGreaterThan(60);
    await meter.flush();
    const error = await caught(call);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as Error).message).toMatch(/would exceed 60 tokens/);
    expect(sim.calls).toHaveLength(1);
  });

  it('checks its options', () => {
    expect(() => createGuards({ defaultMaxTokens: 0 })).toThrow(
      'Expected `defaultMaxTokens` to be a positive integer.',
    );
    expect(() => createGuards({ perUser: { requests: 1.5 } })).toThrow(
      'Expected `perUser.requests` to be a positive integer.',
    );
  });
});

describe('tool-call rounds by wire format', () => {
  const cases: [string, Record<string, unknown>, number][] = [
    ['chat: assistant tool_calls', { messages: agentLoop(3) }, 3],
    [
      'responses: adjacent function_call items are one round',
      {
        input: [
          { role: 'user', content: 'go' },
          { type: 'function_call', call_id: 'a', name: 'f', arguments: '{}' },
          { type: 'function_call', call_id: 'b', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'a', output: 'x' },
          { type: 'function_call_output', call_id: 'b', output: 'y' },
          { type: 'reasoning', summary: [] },
          { type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'c', output: 'z' },
        ],
      },
      2,
    ],
    [
      'anthropic: tool_use blocks',
      {
        messages: [
          { role: 'user', content: 'go' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'x' }] },
        ],
      },
      1,
    ],
    [
      'gemini: functionCall parts of model turns',
      {
        contents: [
          { role: 'user', parts: [{ text: 'go' }] },
          { role: 'model', parts: [{ functionCall: { name: 'f', args: {} } }] },
          { role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] },
        ],
      },
      1,
    ],
    ['no tools', { messages: chatMessages }, 0],
  ];
  for (const [name, body, rounds] of cases) {
    it(name, () => expect(countToolRounds(body)).toBe(rounds));
  }
});

describe('guards in the gateway', () => {
  it('the gateway applies the default max tokens and refuses deep agent loops in the provider shape', async () => {
    records = [];
    meter = createMeter({ database: false, prices: TEST_PRICES, onRecord: (r) => records.push(r) });
    const gw = await startProxy({
      port: 0,
      upstreams: { openai: sim.url },
      meter,
      guards: { defaultMaxTokens: 32, maxToolRounds: 1 },
    });
    try {
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
      await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
      expect((sim.calls[0]!.body as { max_tokens?: number }).max_tokens).toBe(32);
      const error = await caught(() =>
        openai.chat.completions.create({ model: 'gpt-4o-mini', messages: agentLoop(2) }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(sim.calls).toHaveLength(1);
      await meter.flush();
      expect(records.map((r) => [r.request.maxTokens, r.errorCode])).toEqual([
        [32, null],
        [32, 'tool_rounds_exceeded'],
      ]);
    } finally {
      await gw.close();
    }
  });
});
