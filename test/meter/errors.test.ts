import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { CallRecord, ErrorType } from '../../src/index.js';
import type { Fault } from '../../src/sim/index.js';
import { caught, chatMessages, nanosPerToken, useHarness } from '../helpers/harness.js';
import { assertSpan } from '../helpers/otel.js';

const env = useHarness();

/** The same client without the meter: what the SDK raises on its own. */
function rawClients() {
  return {
    openai: new OpenAI({ baseURL: `${env.sim.url}/v1`, apiKey: 'sk-raw', maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: env.sim.url, apiKey: 'sk-raw', maxRetries: 0 }),
  };
}

type Provider = 'openai' | 'anthropic';

/** The simulator's request ids differ per call. */
const withoutIds = (text: string) => text.replace(/req_[0-9a-z]+/g, 'req_');

interface HttpCase {
  provider: Provider;
  fault: Fault;
  status: number;
  errorType: ErrorType;
  retryable: boolean;
  sdkError: string;
}

/** HTTP errors answered before any work: nothing generated, nothing billed. */
const HTTP_CASES: HttpCase[] = [
  ['openai', 'rate_limit', 429, 'rate_limited', true, 'RateLimitError'],
  ['openai', 'server_error', 500, 'server_error', true, 'InternalServerError'],
  ['openai', 'overloaded', 503, 'overloaded', true, 'InternalServerError'],
  ['openai', 'bad_request', 400, 'invalid_request', false, 'BadRequestError'],
  ['openai', 'context_length', 400, 'context_length_exceeded', false, 'BadRequestError'],
  ['openai', 'auth', 401, 'auth', false, 'AuthenticationError'],
  ['openai', 'forbidden', 403, 'auth', false, 'PermissionDeniedError'],
  ['openai', 'not_found', 404, 'not_found', false, 'NotFoundError'],
  ['openai', 'content_filter', 400, 'content_filter', false, 'BadRequestError'],
  ['anthropic', 'rate_limit', 429, 'rate_limited', true, 'RateLimitError'],
  ['anthropic', 'server_error', 500, 'server_error', true, 'InternalServerError'],
  ['anthropic', 'overloaded', 529, 'overloaded', true, 'OverloadedError'],
  ['anthropic', 'bad_request', 400, 'invalid_request', false, 'BadRequestError'],
  ['anthropic', 'context_length', 400, 'context_length_exceeded', false, 'BadRequestError'],
  ['anthropic', 'auth', 401, 'auth', false, 'AuthenticationError'],
  ['anthropic', 'forbidden', 403, 'auth', false, 'PermissionDeniedError'],
  ['anthropic', 'not_found', 404, 'not_found', false, 'NotFoundError'],
].map(([provider, fault, status, errorType, retryable, sdkError]) => ({
  provider,
  fault,
  status,
  errorType,
  retryable,
  sdkError,
})) as HttpCase[];

function call(clients: { openai: OpenAI; anthropic: Anthropic }, provider: Provider, stream = false) {
  if (provider === 'openai') {
    return async () => {
      const res = await clients.openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: chatMessages,
        stream,
      });
      if (stream) for await (const _ of res as AsyncIterable<unknown>);
    };
  }
  return async () => {
    const res = await clients.anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Tell me about the quick brown fox.' }],
      stream,
    });
    if (stream) for await (const _ of res as AsyncIterable<unknown>);
  };
}

/** Rate-limit facts each simulated provider sends with a 429. */
const RATE_LIMIT: Record<Provider, { remainingRequests: number | null; remainingTokens: number | null }> = {
  openai: { remainingRequests: 0, remainingTokens: 30_000_000 },
  anthropic: { remainingRequests: 0, remainingTokens: null },
};

describe('HTTP error responses', () => {
  it.each(HTTP_CASES)('$provider $fault → $status $errorType', async (c) => {
    const h = env.harness();
    // 1.2345 s: `retry-after-ms` says 1235, `retry-after` says 1234.5, so the winner shows.
    env.sim.setDefaults({ fault: c.fault, retryAfterS: 1.2345 });
    const raw = await caught(call(rawClients(), c.provider));
    const metered = await caught(call(h, c.provider));

    // The SDK raises exactly what it raises without the meter.
    expect(metered, 'SDK error').toBeInstanceOf(Error);
    expect((metered as Error).constructor.name, 'SDK error class').toBe(c.sdkError);
    expect((metered as Error).constructor, 'same class as unmetered').toBe((raw as Error).constructor);
    expect((metered as { status?: number }).status, 'SDK error status').toBe(c.status);
    expect(withoutIds((metered as Error).message), 'SDK error message').toBe(
      withoutIds((raw as Error).message),
    );

    const record = await h.record();
    expect(record, 'record').toMatchObject({
      outcome: 'error',
      errorType: c.errorType,
      retryable: c.retryable,
      httpStatus: c.status,
      usage: null,
    });
    expect(record.cost.totalNanos, 'nothing billed').toBe(0);
    const span = h.tel.llmSpans()[0];
    assertSpan(span, {
      attributes: {
        'error.type': c.errorType,
        'llm_meter.outcome': 'error',
        'llm_meter.error.retryable': c.retryable,
        'http.response.status_code': c.status,
      },
    });
    expect(span!.status.code, 'span status ERROR').toBe(2);

    if (c.fault === 'rate_limit') {
      const expectedRetry = c.provider === 'openai' ? 1235 : 1234.5;
      expect(record.retryAfterMs, 'retry-after-ms wins over retry-after').toBe(expectedRetry);
      const limits = RATE_LIMIT[c.provider];
      expect(record.rateLimit).toMatchObject(limits);
      assertSpan(span, {
        attributes: {
          'llm_meter.retry_after_ms': expectedRetry,
          'llm_meter.ratelimit.remaining_requests': limits.remainingRequests ?? undefined,
          'llm_meter.ratelimit.remaining_tokens': limits.remainingTokens ?? undefined,
        },
      });
    } else {
      expect(record.retryAfterMs, 'no retry hint').toBeNull();
    }
  });
});

describe('errors after a 200', () => {
  it('Anthropic content filter (stop_reason refusal): the SDK returns, the record is a content_filter error', async () => {
    const h = env.harness();
    env.sim.setDefaults({ fault: 'content_filter', faultAfterTokens: 2, outputTokens: 10 });
    const msg = await h.anthropic.messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Tell me about the quick brown fox.' }],
    });
    expect(msg.stop_reason).toBe('refusal');
    const record = await h.record();
    const truth = env.sim.calls[0]!;
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'content_filter',
      retryable: false,
      httpStatus: 200,
      usage: { outputTokens: truth.outputTokens, source: 'provider' },
    });
    assertSpan(h.tel.llmSpans()[0], { attributes: { 'error.type': 'content_filter' } });
  });

  it.each<Provider>(['openai', 'anthropic'])(
    '%s streamed content filter: partial output billed, content_filter',
    async (provider) => {
      const h = env.harness();
      env.sim.setDefaults({ fault: 'content_filter', faultAfterTokens: 3, outputTokens: 10 });
      const error = await caught(call(h, provider, true));
      expect(error, 'the SDK reads the filtered stream to its end').toBeUndefined();
      const record = await h.record();
      const truth = env.sim.calls[0]!;
      expect(truth.outputTokens).toBe(3);
      expect(record).toMatchObject({
        outcome: 'error',
        errorType: 'content_filter',
        usage: { inputTokens: truth.inputTokens, outputTokens: 3, source: 'provider' },
      });
      expect(record.cost.outputNanos).toBeGreaterThan(0);
    },
  );

  const PRICE = { openai: { input: 0.15, output: 0.6 }, anthropic: { input: 3, output: 15 } };

  it.each<Provider>(['openai', 'anthropic'])(
    '%s stream cut without its terminal event: stream_interrupted, output received is counted and costed',
    async (provider) => {
      const h = env.harness();
      env.sim.setDefaults({ fault: 'cut_stream', faultAfterTokens: 4, outputTokens: 20 });
      const raw = await caught(call(rawClients(), provider, true));
      const metered = await caught(call(h, provider, true));
      expect(metered, 'SDK error').toBeInstanceOf(Error);
      expect((metered as Error).constructor, 'same error as unmetered').toBe((raw as Error).constructor);
      expect((metered as Error).message).toBe((raw as Error).message);

      const record = await h.record();
      const truth = env.sim.calls.at(-1)!;
      expect(truth.outcome).toBe('cut');
      expect(truth.outputTokens, 'simulator sent 4 tokens').toBe(4);
      expect(record).toMatchObject({
        outcome: 'error',
        errorType: 'stream_interrupted',
        retryable: true,
        httpStatus: 200,
      });
      expect(record.usage?.source).toBe('estimated');
      expect(record.usage?.outputTokens, 'output counted from what arrived').toBe(truth.outputTokens);
      expect(record.usage?.inputTokens, 'input known').toBe(truth.inputTokens);
      const price = PRICE[provider];
      expect(record.cost.outputNanos).toBe(Math.round(4 * nanosPerToken(price.output)));
      expect(record.cost.totalNanos).toBe(
        Math.round(truth.inputTokens * nanosPerToken(price.input) + 4 * nanosPerToken(price.output)),
      );
      assertSpan(h.tel.llmSpans()[0], {
        attributes: {
          'error.type': 'stream_interrupted',
          'gen_ai.usage.output_tokens': 4,
          'llm_meter.usage.source': 'estimated',
        },
      });
    },
  );

  it('OpenAI non-streamed body cut halfway: stream_interrupted, the SDK raises its connection error', async () => {
    const h = env.harness();
    env.sim.setDefaults({ fault: 'cut_stream' });
    const raw = await caught(call(rawClients(), 'openai'));
    const metered = await caught(call(h, 'openai'));
    expect((metered as Error).constructor).toBe((raw as Error).constructor);
    const record = await h.record();
    expect(record).toMatchObject({ outcome: 'error', errorType: 'stream_interrupted', httpStatus: 200 });
  });

  const EVENT_ERRORS: [Provider, ErrorType, string][] = [
    // An error event after a 200 is `stream_interrupted`; the provider's code is kept.
    ['openai', 'stream_interrupted', 'server_error'],
    ['anthropic', 'stream_interrupted', 'overloaded_error'],
  ];

  it.each(EVENT_ERRORS)(
    '%s error event mid-stream → %s, output so far counted',
    async (provider, errorType, errorCode) => {
      const h = env.harness();
      env.sim.setDefaults({ fault: 'error_event', faultAfterTokens: 2, outputTokens: 20 });
      const raw = await caught(call(rawClients(), provider, true));
      const metered = await caught(call(h, provider, true));
      expect(metered, 'SDK error').toBeInstanceOf(Error);
      expect((metered as Error).constructor, 'same error as unmetered').toBe((raw as Error).constructor);
      const record = await h.record();
      const truth = env.sim.calls.at(-1)!;
      expect(record).toMatchObject({
        outcome: 'error',
        errorType,
        errorCode,
        retryable: true,
        httpStatus: 200,
      });
      expect(record.usage).toMatchObject({ outputTokens: truth.outputTokens, source: 'estimated' });
      expect(truth.outputTokens).toBe(2);
      expect(record.cost.outputNanos).toBeGreaterThan(0);
      assertSpan(h.tel.llmSpans()[0], { attributes: { 'error.type': errorType } });
    },
  );
});

describe('errors without a response', () => {
  it('timeout: AbortSignal.timeout against slow headers is a timeout error, not a cancellation', async () => {
    const h = env.harness();
    env.sim.setDefaults({ fault: 'slow_headers', slowHeadersMs: 2_000 });
    const error = await caught(() =>
      h.meter.fetch(`${env.sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages }),
        signal: AbortSignal.timeout(100),
      }),
    );
    expect((error as Error).name, 'the caller gets the fetch TimeoutError').toBe('TimeoutError');
    const record = await h.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'timeout',
      retryable: true,
      httpStatus: null,
      usage: null,
    });
    const truth = await env.sim.waitForCall();
    expect(truth.clientClosed, 'the upstream request was closed').toBe(true);
    assertSpan(h.tel.llmSpans()[0], { attributes: { 'error.type': 'timeout' } });
  });

  // The SDKs enforce `timeout` with an abort that carries no reason; they announce it in an
  // `X-Stainless-Timeout` header (openai-node only for a per-request timeout).
  it.each([
    ['anthropic client option', () => ({ client: { timeout: 1_000 }, request: {} })],
    ['openai per-request option', () => ({ client: {}, request: { timeout: 1_000 } })],
  ] as const)(
    "the SDK's own timeout (%s): a timeout error, not the caller's cancellation",
    async (name, options) => {
      const h = env.harness();
      env.sim.setDefaults({ fault: 'slow_headers', slowHeadersMs: 3_000 });
      const { client, request } = options();
      const error = await caught(() =>
        name.startsWith('anthropic')
          ? new Anthropic({
              baseURL: env.sim.url,
              apiKey: 'sk-t',
              fetch: h.meter.fetch,
              maxRetries: 0,
              ...client,
            }).messages.create(
              { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
              request,
            )
          : new OpenAI({
              baseURL: `${env.sim.url}/v1`,
              apiKey: 'sk-t',
              fetch: h.meter.fetch,
              maxRetries: 0,
              ...client,
            }).chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }, request),
      );
      expect((error as Error).constructor.name, 'the SDK raises its own timeout error').toBe(
        'APIConnectionTimeoutError',
      );
      const record = await h.record();
      expect(record).toMatchObject({ outcome: 'error', errorType: 'timeout', retryable: true, usage: null });
      expect((await env.sim.waitForCall()).clientClosed).toBe(true);
    },
  );

  it('timeout while streaming: a timeout error with the output received', async () => {
    const h = env.harness();
    env.sim.setDefaults({ msPerToken: 40, outputTokens: 200 });
    const res = await h.meter.fetch(`${env.sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream: true }),
      signal: AbortSignal.timeout(300),
    });
    const error = await caught(() => res.text());
    expect((error as Error).name).toBe('TimeoutError');
    const record = await h.record();
    const truth = await env.sim.waitForCall();
    expect(truth.clientClosed).toBe(true);
    expect(record).toMatchObject({ outcome: 'error', errorType: 'timeout', httpStatus: 200 });
    // A token written just as the timer fired may still be on its way: at most one short.
    expect(record.usage?.outputTokens).toBeLessThanOrEqual(truth.outputTokens);
    expect(record.usage?.outputTokens).toBeGreaterThanOrEqual(Math.max(1, truth.outputTokens - 1));
  });

  it('network: a closed port is a network error; the SDK raises APIConnectionError as without the meter', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const h = env.harness();
    const options = { baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-x', maxRetries: 0 };
    const raw = await caught(() =>
      new OpenAI(options).chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
    );
    const metered = await caught(() =>
      new OpenAI({ ...options, fetch: h.meter.fetch }).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: chatMessages,
      }),
    );
    expect(metered).toBeInstanceOf(OpenAI.APIConnectionError);
    expect((metered as Error).constructor).toBe((raw as Error).constructor);
    const record: CallRecord = await h.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'network',
      retryable: true,
      httpStatus: null,
      usage: null,
      serverPort: port,
    });
    expect(record.cost.totalNanos).toBe(0);
    assertSpan(h.tel.llmSpans()[0], { attributes: { 'error.type': 'network' } });
  });
});
