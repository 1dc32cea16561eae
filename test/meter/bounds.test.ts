import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS } from '../../src/assemble.js';
import { type CallRecord, createMeter } from '../../src/index.js';
import { MAX_TOKENS } from '../../src/record.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { type ReplayServer, startReplay } from '../helpers/replay.js';

/**
 * Red-team issue 12.2: every figure read from the wire is bounded. A token count above 2^63, a
 * float, a negative, a string, a part larger than its whole, a server timing longer than the call
 * or a Retry-After of a billion years: the record is still made and stored (a real SQLite file),
 * each figure clamped, and the usage flagged (`source: 'estimated'`, `clamped`).
 */

const newDb = useTempDb();
const encoder = new TextEncoder();
const json = (text: string, status = 200, headers: Record<string, string> = {}) => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  pieces: [encoder.encode(text)],
});

/** Bodies written as text: JSON numbers no JavaScript literal keeps as written. */
const ROUTES = {
  '/openai/v1/chat/completions': json(
    `{"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
      "usage":{"prompt_tokens":18446744073709551616,"completion_tokens":1,
        "prompt_tokens_details":{"cached_tokens":-5},"completion_tokens_details":{"reasoning_tokens":1000000000000}},
      "x_groq":{"usage":{"queue_time":1e300,"prompt_time":-1,"completion_time":0.000001}}}`,
  ),
  '/v1/messages': json(
    `{"id":"m1","type":"message","model":"claude-haiku-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
      "usage":{"input_tokens":1e300,"output_tokens":"12","cache_read_input_tokens":5.5}}`,
  ),
  '/v1beta/models/gemini-2.0-flash:generateContent': json(
    `{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"hi"}]},"finishReason":"STOP"}],
      "usageMetadata":{"promptTokenCount":"40","candidatesTokenCount":3.6,"thoughtsTokenCount":1e20,"cachedContentTokenCount":{"n":1}}}`,
  ),
  '/api/chat': json(
    `{"model":"llama3.2","message":{"role":"assistant","content":"hi"},"done":true,"done_reason":"stop",
      "prompt_eval_count":7,"eval_count":1e20,"load_duration":-5,"prompt_eval_duration":1e300,"eval_duration":1000}`,
  ),
  '/names/v1/chat/completions': json(
    JSON.stringify({
      id: 'i'.repeat(100_000),
      model: 'm'.repeat(100_000),
      choices: Array.from({ length: 1000 }, (_, index) => ({
        index,
        message: { role: 'assistant', content: 'hi' },
        finish_reason: 'r'.repeat(1000),
      })),
      usage: { prompt_tokens: 1, completion_tokens: 1000 },
    }),
  ),
  '/v1/chat/completions': json('{"error":{"message":"slow down","type":"rate_limit_error"}}', 429, {
    'retry-after': '99999999999999999999999',
    'openai-processing-ms': '1e300',
  }),
};

let replay: ReplayServer;
beforeAll(async () => {
  replay = await startReplay(ROUTES);
});
afterAll(async () => {
  await replay.close();
});

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4 },
  'llama3.2': { input: 0.05, output: 0.1 },
};

async function call(path: string, body: Record<string, unknown>) {
  const records: CallRecord[] = [];
  const meter = createMeter({ database: newDb(), prices: PRICES, onRecord: (r) => records.push(r) });
  try {
    const res = await meter.fetch(`${replay.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    await meter.flush();
    expect(records, 'one record').toHaveLength(1);
    const record = records[0]!;
    const { events } = await meter.store!.events({});
    expect(
      events.map((e) => e.id),
      'the record is stored',
    ).toEqual([record.id]);
    expect(meter.stats().store, 'nothing refused or dropped').toMatchObject({ invalid: 0, dropped: 0 });
    return { record, row: events[0]! };
  } finally {
    await meter.shutdown();
  }
}

const messages = [{ role: 'user', content: 'hi' }];

describe('token figures from the wire are bounded, and the usage flagged', () => {
  it('OpenAI-compatible (Groq timings): 2^64 input, 1e12 reasoning beside 1 output, a negative cache read', async () => {
    const { record, row } = await call('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages });
    expect(record.usage).toEqual({
      inputTokens: MAX_TOKENS,
      outputTokens: 1,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 1,
      source: 'estimated',
      clamped: ['inputTokens', 'reasoningTokens'],
    });
    expect(row).toMatchObject({
      input_tokens: MAX_TOKENS,
      output_tokens: 1,
      reasoning_tokens: 1,
      tokens_source: 'estimated',
    });
    expect(Number.isSafeInteger(record.cost.totalNanos), 'a cost, exact').toBe(true);
    // A queue of 1e300 s and a negative prefill are no durations of this call.
    expect(record.timing.queue?.source, 'queue not the provider’s').not.toBe('provider');
    expect(record.timing.prefill?.source, 'prefill not the provider’s').not.toBe('provider');
    expect(record.timing.generation).toEqual({ ms: 0.001, source: 'provider' });
  });

  it('Anthropic: 1e300 input, a string output count, a fractional cache read', async () => {
    const { record, row } = await call('/v1/messages', {
      model: 'claude-haiku-4-5',
      max_tokens: 10,
      messages,
    });
    expect(record.usage).toMatchObject({ inputTokens: MAX_TOKENS, cacheReadTokens: 6, source: 'estimated' });
    expect(row).toMatchObject({ input_tokens: MAX_TOKENS, tokens_source: 'estimated' });
  });

  it('Gemini: proto3 string counts are read; 1e20 thoughts and an object count are bounded', async () => {
    const { record, row } = await call('/v1beta/models/gemini-2.0-flash:generateContent', {
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
    });
    expect(record.usage).toMatchObject({
      inputTokens: 40,
      outputTokens: MAX_TOKENS,
      reasoningTokens: MAX_TOKENS,
      cacheReadTokens: 0,
      source: 'estimated',
    });
    expect(row).toMatchObject({ input_tokens: 40, output_tokens: MAX_TOKENS, tokens_source: 'estimated' });
  });

  it('Ollama: 1e20 output; a negative load and a 1e300 ns prefill are not taken as durations', async () => {
    const { record, row } = await call('/api/chat', { model: 'llama3.2', stream: false, messages });
    expect(record.usage).toMatchObject({ inputTokens: 7, outputTokens: MAX_TOKENS, source: 'estimated' });
    expect(record.usage?.clamped).toEqual(['outputTokens']);
    expect(row).toMatchObject({ output_tokens: MAX_TOKENS, tokens_source: 'estimated' });
    expect(record.timing.queue?.source).not.toBe('provider');
    expect(record.timing.prefill?.source).not.toBe('provider');
    expect(record.timing.generation).toEqual({ ms: 0.001, source: 'provider' });
  });

  it('a Retry-After of 1e23 seconds and a processing time of 1e300 ms: bounded, the record stored', async () => {
    const { record, row } = await call('/v1/chat/completions', { model: 'gpt-4o-mini', messages });
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'rate_limited',
      retryAfterMs: MAX_RETRY_AFTER_MS,
    });
    expect(record.timing.serverProcessingMs).toBeNull();
    expect(row).toMatchObject({ retry_after_ms: MAX_RETRY_AFTER_MS, server_processing_ms: null });
  });

  it('names and lists from the wire: a 100k-character model and id, 1000 long finish reasons', async () => {
    const { record, row } = await call('/names/v1/chat/completions', { model: 'x'.repeat(10_000), messages });
    expect(record.requestModel).toBe('x'.repeat(256));
    expect(record.responseModel).toBe('m'.repeat(256));
    expect(record.responseId).toBe('i'.repeat(256));
    expect(record.finishReasons).toEqual(Array.from({ length: 128 }, () => 'r'.repeat(64)));
    expect(row).toMatchObject({ request_model: 'x'.repeat(256), response_model: 'm'.repeat(256) });
  });

  it('a request asking for 1e300 tokens and choices: bounded in the record, the projection exact', async () => {
    const { record, row } = await call('/openai/v1/chat/completions', {
      model: 'gpt-4o-mini',
      max_tokens: 1e300,
      n: 1e300,
      messages,
    });
    expect(record.request).toMatchObject({ maxTokens: MAX_TOKENS, choices: MAX_TOKENS });
    expect(row.max_tokens).toBe(MAX_TOKENS);
  });
});
