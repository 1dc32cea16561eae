/**
 * src/providers/openai.ts on its own: detection by host and path, what a request asks for, the
 * stream-usage amendment and the filter that hides it, the response parsers (chat, Responses,
 * embeddings; streamed and whole), errors, headers and the max-tokens field per endpoint.
 * No network: wire bytes in, facts out. The end-to-end tests (test/providers.openai-compat,
 * test/clients.openai) run the same adapter against the simulator and the official SDK.
 */
import { describe, expect, it } from 'vitest';
import { openaiAdapter } from '../../src/providers/openai.js';
import type { Detection, ResponseParser, StreamEvent } from '../../src/providers/types.js';

function detectUrl(url: string, method = 'POST'): Detection | null {
  return openaiAdapter.detect(new URL(url), method, new Headers());
}

function detection(url = 'https://api.openai.com/v1/chat/completions'): Detection {
  const d = detectUrl(url);
  if (!d) throw new Error(`not detected: ${url}`);
  return d;
}

const event = (data: unknown, name = ''): StreamEvent => ({
  event: name,
  data: typeof data === 'string' ? data : JSON.stringify(data),
});

/** Feeds events and says which carried output. */
function feed(parser: ResponseParser, events: StreamEvent[]): boolean[] {
  return events.map((e) => parser.event(e));
}

describe('detect', () => {
  it.each([
    ['https://api.openai.com/v1/chat/completions', 'openai', 'chat', null],
    ['https://api.openai.com/v1/responses', 'openai', 'chat', null],
    ['https://api.openai.com/v1/embeddings', 'openai', 'embeddings', null],
    ['https://api.openai.com/v1/completions', 'openai', 'text_completion', null],
    ['https://api.openai.com/v1/chat/completions/', 'openai', 'chat', null],
    [
      'https://my.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21',
      'azure.ai.openai',
      'chat',
      'prod-4o',
    ],
    ['https://api.groq.com/openai/v1/chat/completions', 'groq', 'chat', null],
    ['https://api.deepseek.com/chat/completions', 'deepseek', 'chat', null],
    ['https://openrouter.ai/api/v1/chat/completions', 'openrouter', 'chat', null],
    ['https://generativelanguage.googleapis.com/v1beta/openai/chat/completions', 'gcp.gemini', 'chat', null],
    ['http://localhost:11434/v1/chat/completions', 'ollama', 'chat', null],
    ['http://localhost:8000/v1/chat/completions', 'openai_compatible', 'chat', null],
  ])('%s → %s %s', (url, provider, operation, urlModel) => {
    expect(detectUrl(url)).toMatchObject({ adapter: openaiAdapter, provider, operation, urlModel });
  });

  it.each([
    ['a GET', 'https://api.openai.com/v1/chat/completions', 'GET'],
    ['another path', 'https://api.openai.com/v1/files', 'POST'],
    ['models', 'https://api.openai.com/v1/models', 'POST'],
  ])('not an OpenAI call: %s', (_name, url, method) => {
    expect(detectUrl(url, method)).toBeNull();
  });

  it('the tokenizer shape follows the endpoint', () => {
    expect(openaiAdapter.bodyShape(detection())).toBe('openai-chat');
    expect(openaiAdapter.bodyShape(detection('https://api.openai.com/v1/responses'))).toBe(
      'openai-responses',
    );
    expect(openaiAdapter.bodyShape(detection('https://api.openai.com/v1/embeddings'))).toBe(
      'openai-embeddings',
    );
    expect(openaiAdapter.bodyShape(detection('https://api.openai.com/v1/completions'))).toBe(
      'openai-completions',
    );
  });
});

describe('parseRequest', () => {
  it.each([
    [
      'chat with every field',
      'https://api.openai.com/v1/chat/completions',
      {
        model: 'gpt-4o',
        stream: true,
        max_completion_tokens: 100,
        max_tokens: 50,
        temperature: 0.2,
        n: 2,
        tools: [{ type: 'function' }, { type: 'function' }],
        messages: [{ role: 'user', content: 'hi' }],
      },
      {
        parsed: true,
        model: 'gpt-4o',
        stream: true,
        maxTokens: 100,
        temperature: 0.2,
        choices: 2,
        toolCount: 2,
      },
    ],
    [
      'legacy max_tokens and functions',
      'https://api.openai.com/v1/chat/completions',
      { model: 'gpt-4o-mini', max_tokens: 50, functions: [{}], messages: [] },
      { model: 'gpt-4o-mini', stream: false, maxTokens: 50, toolCount: 1, choices: null, temperature: null },
    ],
    [
      'Responses max_output_tokens',
      'https://api.openai.com/v1/responses',
      { model: 'gpt-4.1', input: 'hi', max_output_tokens: 30 },
      { model: 'gpt-4.1', maxTokens: 30 },
    ],
    [
      'an Azure deployment names the model when the body does not',
      'https://my.openai.azure.com/openai/deployments/prod-4o/chat/completions',
      { messages: [] },
      { model: 'prod-4o' },
    ],
  ])('%s', (_name, url, body, expected) => {
    expect(openaiAdapter.parseRequest(body, detection(url))).toMatchObject(expected);
  });

  it('tool-call rounds: assistant turns that called tools (chat), runs of function_call items (Responses)', () => {
    const chat = openaiAdapter.parseRequest(
      {
        model: 'gpt-4o',
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', tool_calls: [{ id: 'a' }, { id: 'b' }] },
          { role: 'tool', content: '1' },
          { role: 'tool', content: '2' },
          { role: 'assistant', function_call: { name: 'f' } },
          { role: 'function', content: '3' },
          { role: 'assistant', content: 'done' },
        ],
      },
      detection(),
    );
    expect(chat.toolRounds).toBe(2);
    const responses = openaiAdapter.parseRequest(
      {
        model: 'gpt-4.1',
        input: [
          { type: 'message' },
          { type: 'function_call' },
          { type: 'function_call' },
          { type: 'function_call_output' },
          { type: 'function_call_output' },
          { type: 'function_call' },
          { type: 'function_call_output' },
        ],
      },
      detection('https://api.openai.com/v1/responses'),
    );
    expect(responses.toolRounds).toBe(2);
  });
});

describe('amendRequest: ask a chat stream for its usage, and hide it', () => {
  const amend = (body: Record<string, unknown>, url?: string, streamUsage = true) => {
    const d = detection(url);
    return openaiAdapter.amendRequest!(body, openaiAdapter.parseRequest(body, d), d, { streamUsage });
  };
  const streaming = { model: 'gpt-4o', stream: true, messages: [] };

  it('a chat stream that did not ask gets include_usage; its other stream options are kept', () => {
    expect(amend({ ...streaming, stream_options: { other: 1 } })?.body).toEqual({
      ...streaming,
      stream_options: { other: 1, include_usage: true },
    });
  });

  it.each([
    ['streamUsage off', streaming, undefined, false],
    ['not a stream', { ...streaming, stream: false }, undefined, true],
    ['already asked', { ...streaming, stream_options: { include_usage: true } }, undefined, true],
    ['the Responses API', streaming, 'https://api.openai.com/v1/responses', true],
    ['a server not known to accept it', streaming, 'https://api.mistral.ai/v1/chat/completions', true],
  ])('untouched: %s', (_name, body, url, streamUsage) => {
    expect(amend(body, url, streamUsage)).toBeNull();
  });

  it('the filter drops the usage chunk, strips `"usage":null`, keeps everything else', () => {
    const filter = amend(streaming)!.filter;
    expect(filter(event({ id: 'c', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } }))).toBe(
      'drop',
    );
    expect(filter(event('{"id":"c","choices":[{"delta":{"content":"x"}}],"usage":null}'))).toBe(
      '{"id":"c","choices":[{"delta":{"content":"x"}}]}',
    );
    expect(filter(event('{"usage":null,"id":"c","choices":[]}'))).toBe('{"id":"c","choices":[]}');
    // Azure's first chunk has empty choices too, with prompt filter results and no usage.
    expect(filter(event({ id: '', choices: [], prompt_filter_results: [{}] }))).toBe('keep');
    expect(filter(event('[DONE]'))).toBe('keep');
  });
});

describe('chat parser', () => {
  it('a stream: output flags, usage (cache reads, reasoning), finish reasons by index, terminal', () => {
    const parser = openaiAdapter.createParser(
      detection(),
      openaiAdapter.parseRequest({ model: 'gpt-4o' }, detection()),
    );
    const outputs = feed(parser, [
      event({ id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { role: 'assistant' } }] }),
      event({ id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Hel' } }] }),
      event({ id: 'c1', choices: [{ index: 1, delta: { content: 'lo' }, finish_reason: 'length' }] }),
      event({ id: 'c1', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
      event({
        id: 'c1',
        choices: [],
        usage: {
          prompt_tokens: 20,
          completion_tokens: 7,
          prompt_tokens_details: { cached_tokens: 8 },
          completion_tokens_details: { reasoning_tokens: 3 },
        },
      }),
      event('[DONE]'),
    ]);
    expect(outputs).toEqual([false, true, true, false, false, false]);
    expect(parser.result()).toMatchObject({
      responseId: 'c1',
      responseModel: 'gpt-4o',
      usage: {
        inputTokens: 20,
        outputTokens: 7,
        cacheReadTokens: 8,
        cacheWriteTokens: 0,
        reasoningTokens: 3,
      },
      finishReasons: ['stop', 'length'],
      terminal: true,
      streamError: null,
      outputText: 'Hello',
    });
  });

  it('streamed tool calls: counted once each, arguments checked when whole', () => {
    const parser = openaiAdapter.createParser(
      detection(),
      openaiAdapter.parseRequest({ model: 'm' }, detection()),
    );
    const call = (index: number, args: string, name?: string) =>
      event({
        choices: [
          {
            index: 0,
            delta: { tool_calls: [{ index, function: { ...(name ? { name } : {}), arguments: args } }] },
          },
        ],
      });
    feed(parser, [
      call(0, '', 'get_weather'),
      call(0, '{"city":'),
      call(0, '"Paris"}'),
      call(1, '{"city": "Ro', 'get_weather'),
      event({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }),
      event('[DONE]'),
    ]);
    expect(parser.result()).toMatchObject({
      toolCalls: 2,
      invalidToolCalls: 1,
      finishReasons: ['tool_calls'],
    });
  });

  it('an error event inside a 200 stream', () => {
    const parser = openaiAdapter.createParser(
      detection(),
      openaiAdapter.parseRequest({ model: 'm' }, detection()),
    );
    feed(parser, [
      event({ error: { message: 'The server had an error', type: 'server_error', code: null } }),
    ]);
    expect(parser.result()).toMatchObject({
      terminal: false,
      streamError: { type: 'server_error', code: null, message: 'The server had an error' },
    });
  });

  it('a whole JSON body, with Groq-style server timing', () => {
    const parser = openaiAdapter.createParser(
      detection(),
      openaiAdapter.parseRequest({ model: 'm' }, detection()),
    );
    parser.json({
      id: 'c2',
      model: 'llama-3.3-70b',
      choices: [
        {
          index: 0,
          message: {
            content: 'ok',
            tool_calls: [
              { function: { name: 'f', arguments: '{"a":1}' } },
              { function: { name: 'g', arguments: '{' } },
            ],
          },
          finish_reason: 'tool_calls',
        },
      ],
      usage: {
        prompt_tokens: 11,
        completion_tokens: 4,
        queue_time: 0.05,
        prompt_time: 0.01,
        completion_time: 0.2,
      },
    });
    expect(parser.result()).toMatchObject({
      responseId: 'c2',
      responseModel: 'llama-3.3-70b',
      usage: { inputTokens: 11, outputTokens: 4 },
      toolCalls: 2,
      invalidToolCalls: 1,
      terminal: true,
      outputText: 'ok',
      serverTiming: { queueMs: 50, prefillMs: 10, generationMs: 200 },
    });
  });

  it('llama.cpp: cached prompt tokens from timings.cache_n, applied at the end', () => {
    const parser = openaiAdapter.createParser(
      detection(),
      openaiAdapter.parseRequest({ model: 'm' }, detection()),
    );
    feed(parser, [
      event({
        choices: [{ index: 0, delta: { content: 'x' } }],
        timings: { cache_n: 6, prompt_ms: 12, predicted_ms: 30 },
      }),
      event({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 1 } }),
      event('[DONE]'),
    ]);
    expect(parser.result()).toMatchObject({
      usage: { inputTokens: 10, cacheReadTokens: 6 },
      serverTiming: { queueMs: null, prefillMs: 12, generationMs: 30 },
    });
  });
});

describe('Responses parser', () => {
  const d = () => detection('https://api.openai.com/v1/responses');

  it('a stream: deltas are output, the completed response has usage, finish and tool calls', () => {
    const parser = openaiAdapter.createParser(d(), openaiAdapter.parseRequest({ model: 'gpt-4.1' }, d()));
    const outputs = feed(parser, [
      event({
        type: 'response.created',
        response: { id: 'resp_1', model: 'gpt-4.1', status: 'in_progress' },
      }),
      event({ type: 'response.output_item.added', item: { type: 'function_call' } }),
      event({ type: 'response.function_call_arguments.delta', delta: '{"q":1}' }),
      event({ type: 'response.output_text.delta', delta: 'Hi' }),
      event({
        type: 'response.completed',
        response: {
          id: 'resp_1',
          model: 'gpt-4.1-2025-04-14',
          status: 'completed',
          usage: {
            input_tokens: 30,
            output_tokens: 9,
            input_tokens_details: { cached_tokens: 10 },
            output_tokens_details: { reasoning_tokens: 2 },
          },
          output: [{ type: 'function_call', arguments: '{"q":1}' }, { type: 'message' }],
        },
      }),
    ]);
    expect(outputs).toEqual([false, false, true, true, false]);
    expect(parser.result()).toMatchObject({
      responseId: 'resp_1',
      responseModel: 'gpt-4.1-2025-04-14',
      usage: { inputTokens: 30, outputTokens: 9, cacheReadTokens: 10, reasoningTokens: 2 },
      finishReasons: ['stop'],
      toolCalls: 1,
      invalidToolCalls: 0,
      terminal: true,
      outputText: '{"q":1}Hi',
    });
  });

  it('an incomplete response names its reason; a failed one its error', () => {
    const incomplete = openaiAdapter.createParser(d(), openaiAdapter.parseRequest({ model: 'm' }, d()));
    feed(incomplete, [
      event({
        type: 'response.incomplete',
        response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } },
      }),
    ]);
    expect(incomplete.result()).toMatchObject({ finishReasons: ['max_output_tokens'], terminal: true });
    const failed = openaiAdapter.createParser(d(), openaiAdapter.parseRequest({ model: 'm' }, d()));
    feed(failed, [
      event({
        type: 'response.failed',
        response: { status: 'failed', error: { code: 'server_error', message: 'x' } },
      }),
    ]);
    expect(failed.result()).toMatchObject({
      finishReasons: ['failed'],
      streamError: { code: 'server_error' },
    });
  });
});

describe('embeddings parser', () => {
  it('input-only usage from a whole body; a stream event is never output', () => {
    const d = detection('https://api.openai.com/v1/embeddings');
    const parser = openaiAdapter.createParser(
      d,
      openaiAdapter.parseRequest({ model: 'text-embedding-3-small' }, d),
    );
    expect(parser.event(event({ anything: true }))).toBe(false);
    parser.json({ model: 'text-embedding-3-small', data: [], usage: { prompt_tokens: 8, total_tokens: 8 } });
    expect(parser.result()).toMatchObject({
      responseModel: 'text-embedding-3-small',
      usage: { inputTokens: 8, outputTokens: 0 },
      terminal: true,
    });
  });
});

describe('errors and headers', () => {
  it.each([
    [
      'an OpenAI error body',
      { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } },
      { code: 'rate_limit_exceeded', type: 'requests', message: 'Rate limit reached' },
    ],
    ['a numeric code', { error: { code: 429, message: 'slow down' } }, { code: '429', type: null }],
    ['text, not JSON', '<html>Bad gateway</html>', { code: null, type: null, message: null }],
    ['nothing', undefined, { code: null, type: null, message: null }],
  ])('parseError: %s', (_name, body, expected) => {
    expect(openaiAdapter.parseError(body)).toMatchObject(expected);
  });

  it("errorBody is OpenAI's own shape, which parseError reads back", () => {
    const body = openaiAdapter.errorBody('budget_exceeded', 'over budget');
    expect(body).toEqual({
      error: { message: 'over budget', type: 'budget_exceeded', param: null, code: 'budget_exceeded' },
    });
    expect(openaiAdapter.parseError(body)).toMatchObject({
      code: 'budget_exceeded',
      type: 'budget_exceeded',
    });
  });

  it('readHeaders: rate limits, waits, processing time and x-should-retry', () => {
    const facts = openaiAdapter.readHeaders(
      new Headers({
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-tokens': '29000',
        'x-ratelimit-reset-tokens': '2s',
        'retry-after-ms': '1500',
        'openai-processing-ms': '321',
        'x-should-retry': 'false',
      }),
    );
    expect(facts).toEqual({
      rateLimit: {
        limitRequests: 500,
        remainingRequests: 499,
        limitTokens: 30000,
        remainingTokens: 29000,
        resetTokensMs: 2000,
      },
      retryAfterMs: 1500,
      serverProcessingMs: 321,
      shouldRetry: false,
    });
    expect(openaiAdapter.readHeaders(new Headers())).toEqual({
      rateLimit: null,
      retryAfterMs: null,
      serverProcessingMs: null,
      shouldRetry: null,
    });
  });
});

describe('withMaxOutputTokens: the field per endpoint and host', () => {
  it.each([
    ['chat on api.openai.com', 'https://api.openai.com/v1/chat/completions', { max_completion_tokens: 64 }],
    [
      'chat on Azure',
      'https://x.openai.azure.com/openai/deployments/d/chat/completions',
      { max_completion_tokens: 64 },
    ],
    ['chat on a compatible server', 'https://api.groq.com/openai/v1/chat/completions', { max_tokens: 64 }],
    ['Responses', 'https://api.openai.com/v1/responses', { max_output_tokens: 64 }],
    ['Completions', 'https://api.openai.com/v1/completions', { max_tokens: 64 }],
  ])('%s', (_name, url, field) => {
    expect(openaiAdapter.withMaxOutputTokens!({ model: 'm' }, detection(url), 64)).toEqual({
      model: 'm',
      ...field,
    });
  });

  it.each([
    ['a chat body with max_tokens', 'https://api.openai.com/v1/chat/completions', { max_tokens: 5 }],
    [
      'a chat body with max_completion_tokens',
      'https://api.openai.com/v1/chat/completions',
      { max_completion_tokens: 5 },
    ],
    ['a Responses body with its own limit', 'https://api.openai.com/v1/responses', { max_output_tokens: 5 }],
    ['embeddings', 'https://api.openai.com/v1/embeddings', {}],
  ])('null for %s', (_name, url, body) => {
    expect(openaiAdapter.withMaxOutputTokens!({ model: 'm', ...body }, detection(url), 64)).toBeNull();
  });
});
