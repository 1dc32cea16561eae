import Anthropic from '@anthropic-ai/sdk';
import { Stream as AnthropicStream } from '@anthropic-ai/sdk/streaming';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Behavior,
  type Fault,
  outputWords,
  type SimCall,
  type Simulator,
  startSimulator,
  WORDS,
} from '../../src/sim/index.js';

let sim: Simulator;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startSimulator();
  openai = new OpenAI({ baseURL: sim.url + '/v1', apiKey: 'sk-test', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: sim.url, apiKey: 'sk-ant-test', maxRetries: 0 });
});
afterAll(() => sim.close());
beforeEach(() => sim.reset());

const hello = [{ role: 'user' as const, content: 'hi' }];
// Cookbook rule: 3 per message + "user" (1) + "hi" (1) + 3 priming.
const HELLO_TOKENS = 8;
const text = (n: number, offset = 0) => outputWords(n, offset).join('');
const lastCall = (): SimCall => sim.calls.at(-1)!;
const options = (behavior: Partial<Behavior>) => ({ headers: { 'x-sim-options': JSON.stringify(behavior) } });

/** Raw SSE events (no JSON parsing), via the Anthropic SDK's own decoder. */
async function rawEvents(response: Response) {
  const events: { event: string | null; data: string }[] = [];
  for await (const sse of AnthropicStream.rawEvents(response))
    events.push({ event: sse.event, data: sse.data });
  return events;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('token truth', () => {
  it('emits words that are each exactly one o200k token, bare and after a space', () => {
    for (const word of WORDS) {
      expect(encode(word), `"${word}"`).toHaveLength(1);
      expect(encode(' ' + word), `" ${word}"`).toHaveLength(1);
    }
    const long = text(WORDS.length * 3 + 5);
    expect(encode(long)).toHaveLength(WORDS.length * 3 + 5);
  });

  it.each([
    { name: 'one user message', body: { messages: hello }, expected: HELLO_TOKENS },
    {
      name: 'system + user with name',
      body: {
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', name: 'bob', content: 'hi' },
        ],
      },
      // 3+1+2 (system, "be brief") + 3+1+1+1+1 (user, bob, +1 name, hi) + 3
      expected: 6 + 7 + 3,
    },
    {
      name: 'content parts count their text',
      body: {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hi' },
              { type: 'image_url', image_url: { url: 'data:x' } },
            ],
          },
        ],
      },
      expected: HELLO_TOKENS,
    },
  ])('counts chat input: $name', async ({ body, expected }) => {
    const res = await post('/v1/chat/completions', { model: 'gpt-4o', ...body });
    const json = (await res.json()) as { usage: { prompt_tokens: number } };
    expect(json.usage.prompt_tokens).toBe(expected);
    expect(lastCall().inputTokens).toBe(expected);
  });

  it('adds the tokens of the tools JSON', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    await post('/v1/chat/completions', { model: 'gpt-4o', messages: hello, tools });
    expect(lastCall().inputTokens).toBe(HELLO_TOKENS + encode(JSON.stringify(tools)).length);
  });
});

describe('OpenAI chat completions with the official SDK', () => {
  it('answers non-streamed with usage, details and headers', async () => {
    sim.enqueue({ outputTokens: 5, cacheReadTokens: 4, reasoningTokens: 7 });
    const { data, response } = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages: hello })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.model).toBe('gpt-4o-mini');
    expect(data.choices[0]!.message.content).toBe(text(5));
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({
      prompt_tokens: HELLO_TOKENS,
      completion_tokens: 12,
      total_tokens: HELLO_TOKENS + 12,
      prompt_tokens_details: { cached_tokens: 4 },
      completion_tokens_details: { reasoning_tokens: 7 },
    });
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(response.headers.get('openai-processing-ms')).toBe('0');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBeTruthy();
    const call = lastCall();
    expect(response.headers.get('x-sim-call-id')).toBe(call.id);
    expect(call).toMatchObject({
      provider: 'openai',
      endpoint: 'chat',
      stream: false,
      status: 200,
      outcome: 'completed',
      inputTokens: HELLO_TOKENS,
      outputTokens: 12,
      cacheReadTokens: 4,
      reasoningTokens: 7,
    });
  });

  it('streams one chunk per token, usage:null on each and a usage chunk before [DONE]', async () => {
    sim.enqueue({ outputTokens: 4 });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    // role chunk + 4 tokens + finish + usage
    expect(chunks).toHaveLength(7);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(text(4));
    expect(chunks[5]!.choices[0]!.finish_reason).toBe('stop');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: HELLO_TOKENS, completion_tokens: 4, total_tokens: 12 });
    expect(lastCall()).toMatchObject({ stream: true, outcome: 'completed', outputTokens: 4 });
  });

  it('answers n choices', async () => {
    sim.enqueue({ outputTokens: 3 }, { outputTokens: 3 });
    const data = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, n: 2 });
    expect(data.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(data.usage?.completion_tokens).toBe(6);
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: hello,
      n: 2,
      stream: true,
    });
    const texts = ['', ''];
    for await (const chunk of stream) for (const c of chunk.choices) texts[c.index] += c.delta.content ?? '';
    expect(texts).toEqual([data.choices[0]!.message.content, data.choices[1]!.message.content]);
  });

  it('caps output at max tokens with finish_reason length', async () => {
    sim.setDefaults({ outputTokens: 50 });
    const data = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: hello,
      max_completion_tokens: 3,
    });
    expect(data.choices[0]!.finish_reason).toBe('length');
    expect(data.usage?.completion_tokens).toBe(3);
  });

  it('streams tool calls that the SDK assembles', async () => {
    sim.enqueue({ toolCalls: 2, outputTokens: 5 });
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'search', parameters: { type: 'object', properties: {} } },
      },
    ];
    const final = await openai.chat.completions
      .stream({ model: 'gpt-4o', messages: hello, tools, stream_options: { include_usage: true } })
      .finalChatCompletion();
    const calls = final.choices[0]!.message.tool_calls!;
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => (c.type === 'function' ? c.function.name : ''))).toEqual(['search', 'search']);
    const args = calls.map((c) => (c.type === 'function' ? JSON.parse(c.function.arguments).query : ''));
    expect(args.join(' ').split(' ')).toEqual(text(5).split(' '));
    expect(final.usage?.completion_tokens).toBe(5);
  });
});

describe('OpenAI responses, embeddings and legacy completions', () => {
  it('streams Responses events the SDK accepts, usage on response.completed', async () => {
    sim.enqueue({ outputTokens: 6, cacheReadTokens: 2, reasoningTokens: 3 });
    const stream = openai.responses.stream({ model: 'gpt-4.1', input: 'hi', instructions: 'be brief' });
    const types: string[] = [];
    stream.on('event', (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(text(6));
    expect(final.usage).toMatchObject({
      input_tokens: 3 + 1 + 2 + 3 + 1 + 1 + 3,
      input_tokens_details: { cached_tokens: 2 },
      output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 3 },
    });
    expect(types.slice(0, 4)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    expect(types.filter((t) => t === 'response.output_text.delta')).toHaveLength(6);
    expect(types.slice(-4)).toEqual([
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
  });

  it('answers Responses non-streamed and with function calls', async () => {
    sim.enqueue({ outputTokens: 2 });
    const plain = await openai.responses.create({ model: 'gpt-4.1', input: 'hi' });
    expect(plain.output_text).toBe(text(2));
    expect(plain.status).toBe('completed');
    sim.enqueue({ outputTokens: 9 });
    const capped = await openai.responses.create({ model: 'gpt-4.1', input: 'hi', max_output_tokens: 4 });
    expect(capped).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
    });
    expect(capped.usage?.output_tokens).toBe(4);
    sim.enqueue({ toolCalls: 1, outputTokens: 3 });
    const stream = openai.responses.stream({
      model: 'gpt-4.1',
      input: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', name: 'lookup', parameters: {}, strict: false }],
    });
    const final = await stream.finalResponse();
    const call = final.output[0]!;
    expect(call.type).toBe('function_call');
    if (call.type === 'function_call') expect(JSON.parse(call.arguments)).toEqual({ query: text(3) });
  });

  it('embeds with base64 (the SDK default) and floats', async () => {
    const b64 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['hi', 'the fox'] });
    expect(b64.data).toHaveLength(2);
    expect(b64.data[0]!.embedding).toHaveLength(8);
    expect(b64.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    expect(lastCall().body).toMatchObject({ encoding_format: 'base64' });
    const floats = await openai.embeddings.create({ model: 'm', input: 'hi', encoding_format: 'float' });
    expect(floats.data[0]!.embedding).toEqual(b64.data[0]!.embedding);
  });

  it('streams legacy completions', async () => {
    sim.enqueue({ outputTokens: 3 });
    const stream = await openai.completions.create({
      model: 'gpt-3.5-turbo-instruct',
      prompt: 'the fox',
      stream: true,
      stream_options: { include_usage: true },
    });
    let out = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      out += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(out).toBe(text(3));
    expect(usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });
});

describe('Anthropic messages with the official SDK', () => {
  it('answers non-streamed with cache fields outside input_tokens', async () => {
    sim.enqueue({ outputTokens: 4, cacheReadTokens: 5, cacheWriteTokens: 2 });
    const { data, response } = await anthropic.messages
      .create({ model: 'claude-test', max_tokens: 100, system: 'be brief', messages: hello })
      .withResponse();
    const counted = 3 + 1 + 2 + HELLO_TOKENS;
    expect(data.content).toEqual([{ type: 'text', text: text(4) }]);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.usage).toMatchObject({
      input_tokens: counted - 7,
      cache_read_input_tokens: 5,
      cache_creation_input_tokens: 2,
      output_tokens: 4,
    });
    expect(response.headers.get('request-id')).toBeTruthy();
    expect(response.headers.get('anthropic-ratelimit-requests-remaining')).toBeTruthy();
    expect(lastCall()).toMatchObject({ provider: 'anthropic', inputTokens: counted, cacheWriteTokens: 2 });
  });

  it('streams to a final message with usage', async () => {
    sim.enqueue({ outputTokens: 5, cacheReadTokens: 3 });
    const stream = anthropic.messages.stream({ model: 'claude-test', max_tokens: 100, messages: hello });
    const types: string[] = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    const final = await stream.finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: text(5) }]);
    expect(final.usage).toMatchObject({
      input_tokens: HELLO_TOKENS - 3,
      cache_read_input_tokens: 3,
      output_tokens: 5,
    });
    expect(types[0]).toBe('message_start');
    expect(types.filter((t) => t === 'content_block_delta')).toHaveLength(5);
    expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
  });

  it('streams tool_use blocks whose input the SDK parses', async () => {
    sim.enqueue({ toolCalls: 2, outputTokens: 4 });
    const final = await anthropic.messages
      .stream({
        model: 'claude-test',
        max_tokens: 100,
        messages: hello,
        tools: [{ name: 'get_weather', input_schema: { type: 'object' } }],
      })
      .finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    expect(final.content.map((b) => (b.type === 'tool_use' ? [b.name, b.input] : b.type))).toEqual([
      ['get_weather', { query: text(2) }],
      ['get_weather', { query: text(2, 2) }],
    ]);
  });

  it('stops at max_tokens and counts tokens', async () => {
    sim.setDefaults({ outputTokens: 20 });
    const capped = await anthropic.messages.create({ model: 'claude-x', max_tokens: 2, messages: hello });
    expect(capped.stop_reason).toBe('max_tokens');
    expect(capped.usage.output_tokens).toBe(2);
    const count = await anthropic.messages.countTokens({ model: 'claude-x', messages: hello });
    expect(count.input_tokens).toBe(HELLO_TOKENS);
    expect(lastCall().endpoint).toBe('count_tokens');
  });
});

describe('faults', () => {
  const cases: {
    fault: Fault;
    status: number;
    openai: string;
    anthropic: string;
    anthropicStatus?: number;
  }[] = [
    { fault: 'rate_limit', status: 429, openai: 'RateLimitError', anthropic: 'rate_limit_error' },
    { fault: 'server_error', status: 500, openai: 'InternalServerError', anthropic: 'api_error' },
    {
      fault: 'overloaded',
      status: 503,
      openai: 'InternalServerError',
      anthropic: 'overloaded_error',
      anthropicStatus: 529,
    },
    { fault: 'bad_request', status: 400, openai: 'BadRequestError', anthropic: 'invalid_request_error' },
    { fault: 'context_length', status: 400, openai: 'BadRequestError', anthropic: 'invalid_request_error' },
    { fault: 'auth', status: 401, openai: 'AuthenticationError', anthropic: 'authentication_error' },
    { fault: 'forbidden', status: 403, openai: 'PermissionDeniedError', anthropic: 'permission_error' },
    { fault: 'not_found', status: 404, openai: 'NotFoundError', anthropic: 'not_found_error' },
  ];

  it.each(cases)('$fault surfaces as the SDKs’ own errors', async ({ fault, status, openai: name, ...a }) => {
    const err = await openai.chat.completions
      .create({ model: 'gpt-4o', messages: hello }, options({ fault }))
      .catch((e) => e);
    expect(err.constructor.name).toBe(name);
    expect(err.status).toBe(status);
    const aErr = await anthropic.messages
      .create({ model: 'claude-x', max_tokens: 10, messages: hello }, options({ fault }))
      .catch((e) => e);
    expect(aErr.status).toBe(a.anthropicStatus ?? status);
    expect(aErr.error).toMatchObject({ type: 'error', error: { type: a.anthropic } });
    expect(lastCall()).toMatchObject({ outcome: 'fault', inputTokens: 0, outputTokens: 0 });
  });

  it('rate limits with retry headers in each provider shape', async () => {
    sim.setDefaults({ fault: 'rate_limit', retryAfterS: 2 });
    const err = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.headers.get('retry-after')).toBe('2');
    expect(err.headers.get('retry-after-ms')).toBe('2000');
    expect(err.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const aErr = await anthropic.messages
      .create({ model: 'c', max_tokens: 9, messages: hello })
      .catch((e) => e);
    expect(aErr).toBeInstanceOf(Anthropic.RateLimitError);
    expect(aErr.headers.get('retry-after')).toBe('2');
    expect(aErr.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
  });

  it('rate limits Azure deployments without retry-after', async () => {
    const res = await post(
      '/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21',
      { messages: hello },
      { 'api-key': 'k', 'x-sim-options': JSON.stringify({ fault: 'rate_limit', retryAfterS: 3 }) },
    );
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(res.headers.get('x-rate-limit-reset-tokens')).toBe('3');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('429');
    expect(lastCall()).toMatchObject({ provider: 'azure', query: { 'api-version': '2024-10-21' } });
  });

  it('content_filter: 400 unless streaming, then finish_reason; Anthropic refuses in the body', async () => {
    sim.setDefaults({ fault: 'content_filter', faultAfterTokens: 2 });
    const err = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.code).toBe('content_filter');
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean)).toEqual([
      'content_filter',
    ]);
    expect(chunks.at(-1)!.usage?.completion_tokens).toBe(2);
    const msg = await anthropic.messages.create({ model: 'c', max_tokens: 99, messages: hello });
    expect(msg.stop_reason).toBe('refusal');
    expect(msg.usage.output_tokens).toBe(2);
  });

  it('cut_stream drops the connection before the terminal event and the SDKs throw', async () => {
    sim.setDefaults({ fault: 'cut_stream', faultAfterTokens: 2 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toThrow();
    expect(seen.join('')).toBe(text(2));
    expect(await sim.waitForCall((c) => c.outcome === 'cut')).toMatchObject({ outputTokens: 2, status: 200 });
    await expect(
      anthropic.messages.stream({ model: 'c', max_tokens: 99, messages: hello }).finalMessage(),
    ).rejects.toThrow();
    const responses = openai.responses.stream({ model: 'gpt-4.1', input: 'hi' });
    await expect(responses.finalResponse()).rejects.toThrow();
    await expect(openai.chat.completions.create({ model: 'gpt-4o', messages: hello })).rejects.toThrow();
    expect(lastCall()).toMatchObject({ stream: false, outcome: 'cut' });
  });

  it('error_event sends the provider’s stream error and ends', async () => {
    sim.setDefaults({ fault: 'error_event', faultAfterTokens: 1 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, stream: true });
    const err = await (async () => {
      for await (const _ of stream);
    })().catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.type).toBe('server_error');
    const aErr = await anthropic.messages
      .stream({ model: 'c', max_tokens: 99, messages: hello })
      .finalMessage()
      .catch((e) => e);
    expect(aErr).toBeInstanceOf(Anthropic.APIError);
    expect(aErr.error).toMatchObject({ error: { type: 'overloaded_error' } });
    expect(lastCall()).toMatchObject({ outcome: 'fault', outputTokens: 1 });
  });

  it('garbage adds comments, unknown events, non-JSON data and blank lines to a complete stream', async () => {
    sim.setDefaults({ fault: 'garbage', outputTokens: 3 });
    const final = await anthropic.messages
      .stream({ model: 'c', max_tokens: 99, messages: hello })
      .finalMessage();
    expect(final.usage.output_tokens).toBe(3);
    const res = await post('/v1/chat/completions', {
      model: 'gpt-4o',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    const raw = await res.clone().text();
    expect(raw).toContain(': keep-alive\n');
    expect(raw).toContain('\n\n\n\n');
    const events = await rawEvents(res);
    expect(events.some((e) => e.event === 'sim.unknown')).toBe(true);
    const json = events.filter((e) => e.event === null && e.data.startsWith('{'));
    expect(events.some((e) => e.event === null && !e.data.startsWith('{') && e.data !== '[DONE]')).toBe(true);
    expect(JSON.parse(json.at(-1)!.data).usage.completion_tokens).toBe(3);
    expect(events.at(-1)!.data).toBe('[DONE]');
  });

  it('slow_headers delays the headers', async () => {
    sim.enqueue({ fault: 'slow_headers', slowHeadersMs: 60 });
    await openai.chat.completions.create({ model: 'gpt-4o', messages: hello });
    const call = lastCall();
    expect(call.headersSentAt! - call.receivedAt).toBeGreaterThanOrEqual(58);
    expect(call.outcome).toBe('completed');
  });
});

describe('streams on the wire', () => {
  const cases = (['\n', '\r\n', '\r'] as const).flatMap((lineEnding) =>
    (['event', 'byte', 'random'] as const).map((chunking) => ({
      lineEnding,
      chunking,
      name: JSON.stringify(lineEnding),
    })),
  );
  it.each(cases)(
    'the SDK parses line ending $name with $chunking chunking',
    async ({ lineEnding, chunking }) => {
      sim.enqueue({ lineEnding, chunking, outputTokens: 3 });
      const stream = await openai.chat.completions.create({
        model: 'gpt-4o',
        messages: hello,
        stream: true,
        stream_options: { include_usage: true },
      });
      let out = '';
      let completion = 0;
      for await (const c of stream) {
        out += c.choices[0]?.delta.content ?? '';
        completion = c.usage?.completion_tokens ?? completion;
      }
      expect(out).toBe(text(3));
      expect(completion).toBe(3);
    },
  );

  it('writes the chosen line ending', async () => {
    const res = await post(
      '/v1/messages',
      { model: 'c', max_tokens: 9, messages: hello, stream: true },
      {
        'x-sim-options': JSON.stringify({ lineEnding: '\r\n' }),
      },
    );
    const raw = await res.text();
    expect(raw.startsWith('event: message_start\r\ndata: {')).toBe(true);
    expect(raw.replaceAll('\r\n', '')).not.toMatch(/[\r\n]/);
  });

  it('opens Azure classic streams with prompt filter results and a real model name', async () => {
    const azure = new AzureOpenAI({
      endpoint: sim.url,
      apiKey: 'az-key',
      apiVersion: '2024-10-21',
      deployment: 'prod-4o',
      maxRetries: 0,
    });
    sim.enqueue({ outputTokens: 2 });
    const stream = await azure.chat.completions.create({ model: '', messages: hello, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]).toMatchObject({ choices: [], prompt_filter_results: [{ prompt_index: 0 }] });
    expect(chunks.some((c) => c.choices[0] && !('delta' in c.choices[0]))).toBe(true);
    expect(chunks.at(-1)!.model).toBe('gpt-4o-2024-08-06');
    expect(lastCall()).toMatchObject({
      provider: 'azure',
      path: '/openai/deployments/prod-4o/chat/completions',
    });
    expect(lastCall().headers['api-key']).toBe('az-key');
  });
});

describe('server-reported timings', () => {
  const behavior = {
    report: 'groq',
    queueMs: 5,
    prefillMsPerToken: 1,
    msPerToken: 2,
    outputTokens: 3,
  } as const;

  it.each([
    {
      report: 'groq' as const,
      expected: {
        usage: { queue_time: 0.005, prompt_time: 0.008, completion_time: 0.004, total_time: 0.012 },
      },
    },
    {
      report: 'llamacpp' as const,
      expected: { timings: { prompt_n: 8, prompt_ms: 8, predicted_n: 3, predicted_ms: 4, cache_n: 0 } },
    },
    {
      report: 'vllm' as const,
      expected: { metrics: { queue_time_ms: 5, time_to_first_token_ms: 13, generation_time_ms: 4 } },
    },
  ])('$report in a non-streamed body', async ({ report, expected }) => {
    const res = await post(
      '/openai/v1/chat/completions',
      { model: 'm', messages: hello },
      {
        'x-sim-options': JSON.stringify({ ...behavior, report }),
      },
    );
    expect(await res.json()).toMatchObject(expected);
  });

  it('groq x_groq and vLLM continuous usage in streams', async () => {
    const groq = await rawEvents(
      await post(
        '/openai/v1/chat/completions',
        { model: 'm', messages: hello, stream: true },
        {
          'x-sim-options': JSON.stringify(behavior),
        },
      ),
    );
    const finalChunk = JSON.parse(groq.at(-2)!.data);
    expect(finalChunk.x_groq.usage).toMatchObject({
      prompt_tokens: 8,
      completion_tokens: 3,
      queue_time: 0.005,
    });
    const vllm = await rawEvents(
      await post(
        '/v1/chat/completions',
        {
          model: 'm',
          messages: hello,
          stream: true,
          stream_options: { include_usage: true, continuous_usage_stats: true },
        },
        { 'x-sim-options': JSON.stringify({ ...behavior, report: 'vllm' }) },
      ),
    );
    const usages = vllm
      .filter((e) => e.data !== '[DONE]')
      .map((e) => JSON.parse(e.data).usage.completion_tokens);
    expect(usages).toEqual([0, 1, 2, 3, 3, 3]);
  });
});

describe('timing and the client going away', () => {
  it('sleeps queue, prefill and per-token gaps as planned', async () => {
    sim.enqueue({ queueMs: 30, prefillMsPerToken: 2, msPerToken: 10, outputTokens: 4 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, stream: true });
    for await (const _ of stream);
    const call = await sim.waitForCall();
    expect(call).toMatchObject({ queueMs: 30, prefillMs: 16, generationMs: 30 });
    expect(call.firstTokenAt! - call.receivedAt).toBeGreaterThanOrEqual(30 + 16 - 2);
    expect(call.lastTokenAt! - call.firstTokenAt!).toBeGreaterThanOrEqual(30 - 2);
    expect(call.endedAt!).toBeGreaterThanOrEqual(call.lastTokenAt!);
  });

  it('sees the client abort mid-stream and stops generating', async () => {
    sim.enqueue({ msPerToken: 15, outputTokens: 200 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
    const call = await sim.waitForCall((c) => c.clientClosed);
    expect(call.outcome).toBe('client_closed');
    expect(call.outputTokens).toBeLessThan(200);
  });

  it('sees the client abort while queued', async () => {
    sim.enqueue({ queueMs: 10_000 });
    const controller = new AbortController();
    const request = openai.chat.completions.create(
      { model: 'gpt-4o', messages: hello },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 30);
    await expect(request).rejects.toThrow();
    const call = await sim.waitForCall((c) => c.clientClosed);
    expect(call).toMatchObject({ status: 0, headersSentAt: null, outcome: 'client_closed' });
  });
});

describe('control', () => {
  it('merges defaults < enqueued (FIFO) < header', async () => {
    sim.setDefaults({ outputTokens: 1, queueMs: 0 });
    sim.enqueue({ outputTokens: 2 }, { outputTokens: 3 });
    const sizes = [];
    for (const o of [{}, options({ outputTokens: 7 }), {}]) {
      const r = await openai.chat.completions.create({ model: 'gpt-4o', messages: hello }, o);
      sizes.push(r.usage?.completion_tokens);
    }
    expect(sizes).toEqual([2, 7, 1]);
    expect(sim.calls.map((c) => c.behavior.outputTokens)).toEqual([2, 7, 1]);
  });

  it('rejects bad behaviour where it enters', async () => {
    expect(() => sim.enqueue({ outputTokens: -1 })).toThrow(
      'Expected `outputTokens` to be a non-negative integer.',
    );
    expect(() => sim.setDefaults({ fault: 'nope' as Fault })).toThrow(/`fault`/);
    const res = await post(
      '/v1/chat/completions',
      { messages: hello },
      { 'x-sim-options': '{"queueMs":"x"}' },
    );
    expect(res.status).toBe(400);
  });

  it('answers unknown paths and bad JSON in the provider shape', async () => {
    const res = await fetch(sim.url + '/v1/nothing');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('GET /v1/nothing');
    const bad = await fetch(sim.url + '/v1/messages', { method: 'POST', body: '{' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(lastCall()).toMatchObject({ body: '{', outcome: 'fault' });
  });

  it('waitForCall times out, reset clears, datedModels suffixes', async () => {
    await expect(sim.waitForCall(() => false, 20)).rejects.toThrow(/within 20 ms/);
    await openai.chat.completions.create({ model: 'gpt-4o', messages: hello });
    sim.reset();
    expect(sim.calls).toEqual([]);
    const dated = await startSimulator({ datedModels: true, port: 0 });
    try {
      const client = new OpenAI({ baseURL: dated.url + '/v1', apiKey: 'k', maxRetries: 0 });
      expect((await client.chat.completions.create({ model: 'gpt-4o', messages: hello })).model).toBe(
        'gpt-4o-2024-08-06',
      );
    } finally {
      await dated.close();
    }
  });

  it('closes with a stream still open', async () => {
    const other = await startSimulator({ defaults: { msPerToken: 50, outputTokens: 100 } });
    const res = await fetch(other.url + '/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ model: 'm', messages: hello, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    await other.close();
    await expect(
      (async () => {
        while (!(await reader.read()).done);
      })(),
    ).rejects.toThrow();
  });
});
