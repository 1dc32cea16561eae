/**
 * src/assemble.ts: the outcome of a call is a pure function of its frozen end (a table of named
 * cases), and the record is built from that end alone.
 */
import { describe, expect, it } from 'vitest';
import { type CallOutcome, createAssembler, outcomeOf } from '../src/assemble.js';
import { type CallEnd, NO_ESTIMATE } from '../src/fetch/call.js';
import type { Refusal } from '../src/fetch/refuse.js';
import { createTarget, endpointOf } from '../src/fetch/request.js';
import { createPriceBook } from '../src/pricing/index.js';
import { openaiAdapter } from '../src/providers/openai.js';
import { emptyParsed, type ParsedResponse } from '../src/providers/types.js';

const URL_ = new URL('https://api.openai.com/v1/chat/completions');
const detection = openaiAdapter.detect(URL_, 'POST', new Headers())!;

function parsedWith(fields: Partial<ParsedResponse>): ParsedResponse {
  return { ...emptyParsed(), ...fields };
}

const FINISHED = parsedWith({
  terminal: true,
  finishReasons: ['stop'],
  responseModel: 'gpt-4o-mini',
  usage: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
});

/** A call that went well, changed by `fields`: every case below differs from it in what it names. */
function endOf(fields: Partial<CallEnd> = {}): CallEnd {
  return Object.freeze({
    id: 'call-1',
    detection,
    target: createTarget(endpointOf(URL_), URL_.href, undefined),
    info: {
      parsed: true,
      model: 'gpt-4o-mini',
      stream: false,
      maxTokens: null,
      temperature: null,
      choices: null,
      toolCount: 0,
      toolRounds: 0,
    },
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    attribution: { tags: {} },
    span: null,
    preflight: NO_ESTIMATE,
    startMs: 1_000,
    headersMs: 1_100,
    firstTokenMs: null,
    lastTokenMs: null,
    endMs: 1_200,
    status: 200,
    facts: null,
    parsed: FINISHED,
    chunks: 0,
    unreadBytes: 0,
    ending: 'done',
    error: null,
    providerError: null,
    refusal: null,
    guard: null,
    callerAborted: false,
    ...fields,
  });
}

const httpError = (status: number, code: string | null, type: string | null = null): Partial<CallEnd> => ({
  status,
  parsed: emptyParsed(),
  providerError: { code, type, message: null },
});

const budget: Refusal = {
  kind: 'budget',
  marker: ['x-llm-meter-budget', 'exceeded'],
  status: 429,
  type: 'budget_exceeded',
  message: 'Budget "cap" would be exceeded by this call; it was not sent.',
};
const contextWindow: Refusal = {
  kind: 'context_window',
  marker: ['x-llm-meter-refused', 'context_window'],
  status: 400,
  type: 'context_length_exceeded',
  message: 'Request to `gpt-4o-mini` needs 200000 input + 0 output tokens, over its context window.',
};
const guardGate: Refusal = {
  kind: 'guard',
  marker: ['x-llm-meter-guard', 'user_requests'],
  status: 429,
  type: 'user_rate_limit_exceeded',
  message: 'User "alice" made 2 requests in the last 60000 ms, the most allowed.',
  retryAfterMs: 1_500,
};
const stream = (fields: Partial<CallEnd>): Partial<CallEnd> => ({
  info: { ...endOf().info, stream: true },
  firstTokenMs: 1_150,
  lastTokenMs: 1_190,
  ...fields,
});
const aborted = Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });

const cases: { name: string; end: Partial<CallEnd>; expected: CallOutcome }[] = [
  { name: 'ok', end: {}, expected: { outcome: 'ok', errorType: null, errorCode: null } },
  {
    name: 'ok: a stream read to its terminal event',
    end: stream({ chunks: 4 }),
    expected: { outcome: 'ok', errorType: null, errorCode: null },
  },
  {
    name: 'rate limited (429)',
    end: httpError(429, 'rate_limit_exceeded'),
    expected: {
      outcome: 'error',
      errorType: 'rate_limited',
      errorCode: 'rate_limit_exceeded',
      retryAfterMs: null,
    },
  },
  {
    name: 'overloaded (529)',
    end: httpError(529, null, 'overloaded_error'),
    expected: {
      outcome: 'error',
      errorType: 'overloaded',
      errorCode: 'overloaded_error',
      retryAfterMs: null,
    },
  },
  {
    name: 'server error (500)',
    end: httpError(500, 'server_error'),
    expected: { outcome: 'error', errorType: 'server_error', errorCode: 'server_error', retryAfterMs: null },
  },
  {
    name: 'invalid request (400)',
    end: httpError(400, 'invalid_value'),
    expected: {
      outcome: 'error',
      errorType: 'invalid_request',
      errorCode: 'invalid_value',
      retryAfterMs: null,
    },
  },
  {
    name: 'context length exceeded by the provider (400)',
    end: httpError(400, 'context_length_exceeded'),
    expected: {
      outcome: 'error',
      errorType: 'context_length_exceeded',
      errorCode: 'context_length_exceeded',
      retryAfterMs: null,
    },
  },
  {
    name: 'content filter (400)',
    end: httpError(400, 'content_filter'),
    expected: {
      outcome: 'error',
      errorType: 'content_filter',
      errorCode: 'content_filter',
      retryAfterMs: null,
    },
  },
  {
    name: 'auth (401)',
    end: httpError(401, 'invalid_api_key'),
    expected: { outcome: 'error', errorType: 'auth', errorCode: 'invalid_api_key', retryAfterMs: null },
  },
  {
    name: 'not found (404)',
    end: httpError(404, 'model_not_found'),
    expected: { outcome: 'error', errorType: 'not_found', errorCode: 'model_not_found', retryAfterMs: null },
  },
  {
    name: 'timeout (504)',
    end: httpError(504, null),
    expected: { outcome: 'error', errorType: 'timeout', errorCode: null, retryAfterMs: null },
  },
  {
    name: 'a wait named only in the error body',
    end: {
      status: 429,
      parsed: emptyParsed(),
      providerError: { code: null, type: null, message: null, retryAfterMs: 2_000 },
    },
    expected: { outcome: 'error', errorType: 'rate_limited', errorCode: null, retryAfterMs: 2_000 },
  },
  {
    name: 'content filter as a finish reason (200)',
    end: { parsed: parsedWith({ ...FINISHED, finishReasons: ['content_filter'] }) },
    expected: { outcome: 'error', errorType: 'content_filter', errorCode: 'content_filter' },
  },
  {
    name: 'cancelled: the caller went away before the end',
    end: stream({ chunks: 2, parsed: emptyParsed(), ending: 'cancel', callerAborted: true }),
    expected: { outcome: 'cancelled', errorType: null, errorCode: null },
  },
  {
    name: 'not cancelled: the caller stopped reading after the terminal event',
    end: stream({ chunks: 4, ending: 'cancel', callerAborted: true }),
    expected: { outcome: 'ok', errorType: null, errorCode: null },
  },
  {
    name: 'cancelled before the response',
    end: {
      status: null,
      headersMs: null,
      parsed: emptyParsed(),
      ending: 'thrown',
      error: aborted,
      callerAborted: true,
    },
    expected: { outcome: 'cancelled', errorType: null, errorCode: null },
  },
  {
    name: 'blocked by a budget',
    end: { status: 429, headersMs: null, parsed: emptyParsed(), ending: 'refused', refusal: budget },
    expected: { outcome: 'blocked', errorType: 'budget_exceeded', errorCode: null },
  },
  {
    name: 'refused by the context window',
    end: { status: 400, headersMs: null, parsed: emptyParsed(), ending: 'refused', refusal: contextWindow },
    expected: { outcome: 'blocked', errorType: 'context_length_exceeded', errorCode: 'context_window' },
  },
  {
    name: 'a guard refusal beneath the meter (its response, its error body)',
    end: {
      ...httpError(429, 'user_rate_limit_exceeded', 'user_rate_limit_exceeded'),
      guard: 'user_requests',
    },
    expected: {
      outcome: 'blocked',
      errorType: 'rate_limited',
      errorCode: 'user_rate_limit_exceeded',
      retryAfterMs: null,
    },
  },
  {
    name: 'a circuit breaker answering beneath the meter (503)',
    end: { ...httpError(503, 'circuit_open', 'circuit_open'), guard: 'circuit_breaker' },
    expected: { outcome: 'blocked', errorType: 'overloaded', errorCode: 'circuit_open', retryAfterMs: null },
  },
  {
    name: 'a guard refusal as a gate',
    end: { status: 429, headersMs: null, parsed: emptyParsed(), ending: 'refused', refusal: guardGate },
    expected: {
      outcome: 'blocked',
      errorType: 'rate_limited',
      errorCode: 'user_rate_limit_exceeded',
      retryAfterMs: 1_500,
    },
  },
  {
    name: 'thrown network error',
    end: {
      status: null,
      headersMs: null,
      parsed: emptyParsed(),
      ending: 'thrown',
      error: new TypeError('fetch failed'),
    },
    expected: { outcome: 'error', errorType: 'network', errorCode: null },
  },
  {
    name: 'timeout before the response',
    end: {
      status: null,
      headersMs: null,
      parsed: emptyParsed(),
      ending: 'thrown',
      error: new DOMException('The client timed out before the response.', 'TimeoutError'),
    },
    expected: { outcome: 'error', errorType: 'timeout', errorCode: null },
  },
  {
    name: 'timeout while the body was read',
    end: stream({
      chunks: 2,
      parsed: emptyParsed(),
      ending: 'error',
      error: new DOMException('The operation timed out.', 'TimeoutError'),
    }),
    expected: { outcome: 'error', errorType: 'timeout', errorCode: null },
  },
  {
    name: 'stream interrupted: the body failed',
    end: stream({ chunks: 2, parsed: emptyParsed(), ending: 'error', error: new TypeError('terminated') }),
    expected: { outcome: 'error', errorType: 'stream_interrupted', errorCode: null },
  },
  {
    name: 'stream interrupted: it ended without its terminal event',
    end: stream({ chunks: 2, parsed: emptyParsed() }),
    expected: { outcome: 'error', errorType: 'stream_interrupted', errorCode: null },
  },
  {
    name: 'stream interrupted: an error event after a 200',
    end: stream({
      chunks: 2,
      parsed: parsedWith({ streamError: { code: 'server_error', type: null, message: null } }),
    }),
    expected: { outcome: 'error', errorType: 'stream_interrupted', errorCode: 'server_error' },
  },
  {
    name: 'an error event that names a context overflow keeps its class',
    end: stream({
      chunks: 2,
      parsed: parsedWith({ streamError: { code: 'context_length_exceeded', type: null, message: null } }),
    }),
    expected: {
      outcome: 'error',
      errorType: 'context_length_exceeded',
      errorCode: 'context_length_exceeded',
    },
  },
];

describe('outcomeOf(end)', () => {
  it.each(cases)('$name', ({ end, expected }) => {
    expect(outcomeOf(endOf(end))).toEqual(expected);
  });

  it('reads nothing but the end: the same end gives the same outcome', () => {
    const end = endOf(httpError(429, 'rate_limit_exceeded'));
    expect(outcomeOf(end)).toEqual(outcomeOf(end));
    expect(Object.isFrozen(end)).toBe(true);
  });
});

describe('createAssembler().build(end)', () => {
  const assembler = createAssembler({
    prices: createPriceBook({ 'gpt-4o-mini': { input: 0.15, output: 0.6 } }),
    captureContent: false,
    apiKeyHashSalt: undefined,
  });

  it("a finished call: the provider's usage, priced, with its timing", async () => {
    const record = await assembler.build(endOf());
    expect(record).toMatchObject({
      id: 'call-1',
      provider: 'openai',
      requestModel: 'gpt-4o-mini',
      outcome: 'ok',
      httpStatus: 200,
      usage: { inputTokens: 10, outputTokens: 5, source: 'provider' },
      cost: { totalNanos: 10 * 150 + 5 * 600 },
      preflight: NO_ESTIMATE,
      timing: { startMs: 1_000, headersMs: 1_100, endMs: 1_200, durationMs: 200 },
    });
    expect(record.content, 'no content without captureContent').toBeUndefined();
  });

  it('a refused call: nothing generated, nothing billed, the pre-flight figures kept', async () => {
    const preflight = {
      inputTokensEstimate: 12,
      projectedMaxCostNanos: 2_000,
      contextWindow: 128_000,
      contextExceeded: false,
    };
    const record = await assembler.build(
      endOf({
        status: 429,
        headersMs: null,
        parsed: emptyParsed(),
        ending: 'refused',
        refusal: budget,
        preflight,
      }),
    );
    expect(record).toMatchObject({
      outcome: 'blocked',
      errorType: 'budget_exceeded',
      usage: null,
      cost: { totalNanos: 0 },
      preflight,
    });
  });

  it('a stream cut short: usage estimated from the pre-flight count and the text seen', async () => {
    const record = await assembler.build(
      endOf(
        stream({
          chunks: 3,
          parsed: parsedWith({ outputText: 'Hello there, how are you' }),
          ending: 'error',
          error: new TypeError('terminated'),
          preflight: { ...NO_ESTIMATE, inputTokensEstimate: 42 },
        }),
      ),
    );
    expect(record.outcome).toBe('error');
    expect(record.errorType).toBe('stream_interrupted');
    expect(record.usage).toMatchObject({ inputTokens: 42, source: 'estimated' });
    expect(record.usage!.outputTokens).toBeGreaterThan(0);
  });
});
