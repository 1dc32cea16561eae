import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { DEFAULT_ADAPTERS, detect } from '../../src/providers/registry.js';
import { startProxy } from '../../src/proxy/index.js';
import { createGuards, type GuardOptions, withGuards } from '../../src/resilience/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { caught, chatMessages, TEST_PRICES } from '../helpers/harness.js';

/**
 * Guards against cost explosions (unbounded outputs, endless agent loops, one user's runaway
 * calls), with the official client and the simulator. A refusal is answered beneath the meter
 * in the provider's error shape (the SDK raises its usual class), and recorded as `blocked` with
 * its status and the refusal type as `errorCode`. What a body's max tokens field and tool rounds
 * are is each adapter's knowledge.
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

const URLS = {
  chat: 'https://api.openai.com/v1/chat/completions',
  compatibleChat: 'http://127.0.0.1:8000/v1/chat/completions',
  responses: 'https://api.openai.com/v1/responses',
  completions: 'http://127.0.0.1:8000/v1/completions',
  embeddings: 'https://api.openai.com/v1/embeddings',
  anthropic: 'https://api.anthropic.com/v1/messages',
  anthropicCount: 'https://api.anthropic.com/v1/messages/count_tokens',
  gemini: 'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent',
  geminiEmbed: 'https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:embedContent',
  ollama: 'http://127.0.0.1:11434/api/chat',
  ollamaEmbed: 'http://127.0.0.1:11434/api/embed',
};

function detected(url: string) {
  const detection = detect(DEFAULT_ADAPTERS, new URL(url), 'POST', new Headers());
  expect(detection, url).not.toBeNull();
  return detection!;
}

describe('tool-call rounds by wire format (each adapter counts its own, in request info)', () => {
  const cases: [string, string, Record<string, unknown>, number][] = [
    ['chat: assistant tool_calls', URLS.chat, { messages: agentLoop(3) }, 3],
    [
      'chat: the legacy function_call counts too',
      URLS.compatibleChat,
      {
        messages: [
          { role: 'user', content: 'go' },
          { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } },
          { role: 'function', name: 'f', content: 'x' },
        ],
      },
      1,
    ],
    [
      'responses: adjacent function_call items are one round',
      URLS.responses,
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
      URLS.anthropic,
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
      URLS.gemini,
      {
        contents: [
          { role: 'user', parts: [{ text: 'go' }] },
          { role: 'model', parts: [{ functionCall: { name: 'f', args: {} } }] },
          { role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] },
        ],
      },
      1,
    ],
    [
      'ollama: assistant tool_calls',
      URLS.ollama,
      {
        messages: [
          { role: 'user', content: 'go' },
          { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: {} } }] },
          { role: 'tool', content: 'x' },
        ],
      },
      1,
    ],
    ['no tools', URLS.chat, { messages: chatMessages }, 0],
    ['malformed messages', URLS.anthropic, { messages: [null, 7, { role: 'assistant', content: 'x' }] }, 0],
  ];
  it.each(cases)('%s', (_name, url, body, rounds) => {
    const detection = detected(url);
    expect(detection.adapter.parseRequest(body, detection).toolRounds).toBe(rounds);
  });
});

describe("calls the meter lets pass are not the guards' either", () => {
  const post = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

  it("an app's own POST /api/chat that names no model is neither amended nor limited", async () => {
    const guards = createGuards({ defaultMaxTokens: 100, perUser: { requests: 1 } });
    const url = 'http://127.0.0.1:3000/api/chat';
    const appBody = post({ messages: [{ role: 'user', parts: [{ type: 'text', text: 'hi' }] }] });
    expect(guards.amend(url, appBody)).toBeNull();
    expect(await guards.check(url, appBody, 'alice')).toBeNull();
    expect(await guards.check(url, appBody, 'alice'), 'not counted against the user').toBeNull();
    // The same path with an Ollama body is an LLM call: amended, and limited.
    const ollama = post({ model: 'llama3.1', messages: [{ role: 'user', content: 'hi' }] });
    expect(guards.amend(url, ollama)).toMatchObject({ options: { num_predict: 100 } });
    expect(await guards.check(url, ollama, 'bob')).toBeNull();
    expect((await guards.check(url, ollama, 'bob'))?.status).toBe(429);
  });

  it('a body that is not JSON on a path other servers share is left alone', async () => {
    const guards = createGuards({ defaultMaxTokens: 100 });
    expect(
      guards.amend('http://127.0.0.1:3000/api/generate', { method: 'POST', body: 'plain text' }),
    ).toBeNull();
  });
});

describe('default max output tokens by wire format (each adapter knows its field)', () => {
  const cases: [string, string, Record<string, unknown>, Record<string, unknown> | null][] = [
    [
      'chat on api.openai.com: max_completion_tokens',
      URLS.chat,
      { model: 'o3' },
      { max_completion_tokens: 7 },
    ],
    ['chat on a compatible server: max_tokens', URLS.compatibleChat, { model: 'm' }, { max_tokens: 7 }],
    ['responses: max_output_tokens', URLS.responses, { model: 'm' }, { max_output_tokens: 7 }],
    ['completions: max_tokens', URLS.completions, { model: 'm' }, { max_tokens: 7 }],
    ['anthropic: max_tokens', URLS.anthropic, { model: 'm' }, { max_tokens: 7 }],
    [
      'gemini: generationConfig.maxOutputTokens, keeping the rest of the config',
      URLS.gemini,
      { generationConfig: { temperature: 0 } },
      { generationConfig: { temperature: 0, maxOutputTokens: 7 } },
    ],
    [
      'ollama: options.num_predict, keeping the other options',
      URLS.ollama,
      { model: 'm', options: { seed: 1 } },
      { model: 'm', options: { seed: 1, num_predict: 7 } },
    ],
    ['embeddings generate nothing', URLS.embeddings, { model: 'm', input: 'x' }, null],
    ['anthropic token counts generate nothing', URLS.anthropicCount, { model: 'm' }, null],
    ['gemini embeddings generate nothing', URLS.geminiEmbed, { content: {} }, null],
    ['ollama embeddings generate nothing', URLS.ollamaEmbed, { model: 'm', input: 'x' }, null],
    ['a limit already set is kept', URLS.compatibleChat, { model: 'm', max_tokens: 3 }, null],
    ['gemini: a limit already set is kept', URLS.gemini, { generationConfig: { maxOutputTokens: 3 } }, null],
  ];
  it.each(cases)('%s', (_name, url, body, expected) => {
    const detection = detected(url);
    const amended = detection.adapter.withMaxOutputTokens?.(body, detection, 7) ?? null;
    expect(amended).toEqual(expected === null ? null : { ...body, ...expected });
    expect(body, "the caller's body is not mutated").not.toHaveProperty('max_tokens', 7);
  });
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
