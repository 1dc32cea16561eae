import { describe, expect, it } from 'vitest';
import { geminiUsage } from '../../src/providers/gemini.js';
import type { Behavior, Fault } from '../../src/sim/index.js';
import {
  everythingExported,
  expectCancelledUsage,
  expectedCostNanos,
  post,
  readThenCancel,
  toSimulator,
  useProbe,
} from '../helpers/metered.js';
import { assertSpan } from '../helpers/otel.js';

/**
 * Gemini through meter.fetch against the simulator: each response format (JSON, SSE with
 * `alt=sse`, and the incrementally arriving JSON array) for a complete answer, an HTTP error, an
 * error inside the stream, a cut stream and a caller that goes away; figures against the
 * simulator's truth.
 */

const MODEL = 'gemini-2.5-flash';
const PRICES = {
  [MODEL]: { input: 0.3, output: 2.5, cachedInput: 0.03 },
  'text-embedding-004': { input: 0.1, output: 0 },
};
const KEY = 'AIzaSy-test-secret-key-0123456789';
const BASE = `/v1beta/models/${MODEL}`;

const request = {
  systemInstruction: { parts: [{ text: 'You are terse.' }] },
  contents: [{ role: 'user', parts: [{ text: 'Tell me about the quick brown fox.' }] }],
  generationConfig: { maxOutputTokens: 100, temperature: 0.2 },
};

type Format = 'sse' | 'json-array';
const STREAM_QUERY: Record<Format, string> = { sse: '?alt=sse', 'json-array': '' };

const env = useProbe({ prices: PRICES });

function call(method: string, behavior: Partial<Behavior> = {}, body: unknown = request, query = '') {
  return env.probe.meter.fetch(
    `${env.sim.url}${BASE}:${method}${query}`,
    post(body, behavior, { 'x-goog-api-key': KEY }),
  );
}

/** The JSON values of a stream body in either format, without the per-call response id. */
function streamValues(text: string, format: Format): unknown[] {
  const values: unknown[] =
    format === 'sse'
      ? text
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => JSON.parse(l.slice(6)))
      : JSON.parse(text);
  return values.map((v) => ({ ...(v as object), responseId: undefined }));
}

describe('generateContent (JSON)', () => {
  it('normalises usageMetadata, reads generationConfig and prices the call exactly', async () => {
    env.setup();
    const tools = [{ functionDeclarations: [{ name: 'lookup' }, { name: 'weather' }] }, { googleSearch: {} }];
    const res = await call(
      'generateContent',
      { outputTokens: 6, reasoningTokens: 4, cacheReadTokens: 3 },
      { ...request, tools, generationConfig: { ...request.generationConfig, candidateCount: 2 } },
    );
    const json = (await res.json()) as { responseId: string; usageMetadata: Record<string, number> };
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    // The wire: thoughts outside candidates, cache inside the prompt count.
    expect(json.usageMetadata).toMatchObject({
      promptTokenCount: truth.inputTokens,
      candidatesTokenCount: 12,
      thoughtsTokenCount: 4,
      cachedContentTokenCount: 3,
    });
    expect(record.usage).toEqual({
      inputTokens: truth.inputTokens,
      outputTokens: truth.outputTokens,
      cacheReadTokens: 3,
      cacheWriteTokens: 0,
      reasoningTokens: 4,
      source: 'provider',
    });
    expect(truth.outputTokens).toBe(16);
    expect(record.request).toEqual({
      parsed: true,
      model: MODEL,
      stream: false,
      maxTokens: 100,
      temperature: 0.2,
      choices: 2,
      toolCount: 3,
      toolRounds: 0,
    });
    expect(record).toMatchObject({
      provider: 'gcp.gemini',
      operation: 'generate_content',
      requestModel: MODEL,
      responseModel: MODEL,
      responseId: json.responseId,
      finishReasons: ['STOP', 'STOP'],
      outcome: 'ok',
    });
    expect(record.cost.totalNanos).toBe(expectedCostNanos(PRICES[MODEL], record.usage!));
    expect(record.cost.cacheReadNanos).toBe(Math.round(3 * 30));
    // Google front ends' `server-timing: gfet4t7; dur=…`.
    expect(record.timing.serverProcessingMs).toBeTypeOf('number');
    assertSpan(env.probe.tel.llmSpans()[0], {
      name: `generate_content ${MODEL}`,
      attributes: {
        'gen_ai.operation.name': 'generate_content',
        'gen_ai.provider.name': 'gcp.gemini',
        'gen_ai.request.model': MODEL,
        'gen_ai.request.max_tokens': 100,
        'gen_ai.request.temperature': 0.2,
        'gen_ai.request.choice.count': 2,
        'gen_ai.usage.input_tokens': truth.inputTokens,
        'gen_ai.usage.output_tokens': 16,
        'gen_ai.usage.cache_read.input_tokens': 3,
        'gen_ai.usage.reasoning.output_tokens': 4,
        'gen_ai.response.finish_reasons': ['STOP', 'STOP'],
      },
    });
  });

  it('function calls count as tool calls and as output', async () => {
    env.setup();
    const tools = [{ functionDeclarations: [{ name: 'lookup', parameters: { type: 'object' } }] }];
    const res = await call('generateContent', { toolCalls: 2, outputTokens: 6 }, { ...request, tools });
    const json = (await res.json()) as { candidates: { content: { parts: unknown[] } }[] };
    expect(json.candidates[0]!.content.parts).toHaveLength(2);
    const record = await env.probe.record();
    expect(record.toolCalls).toBe(2);
    expect(record.request.toolCount).toBe(1);
    expect(record.usage?.outputTokens).toBe(env.sim.calls[0]!.outputTokens);
  });

  it('a blocked prompt (promptFeedback.blockReason) is a content_filter error with the usage reported', async () => {
    env.setup();
    const blocked = {
      promptFeedback: { blockReason: 'PROHIBITED_CONTENT' },
      usageMetadata: { promptTokenCount: 7, totalTokenCount: 7 },
      modelVersion: MODEL,
    };
    const fetchBlocked = async () => Response.json(blocked);
    const res = await env.probe.meter.wrapFetch(fetchBlocked)(
      `https://generativelanguage.googleapis.com${BASE}:generateContent`,
      post(request),
    );
    expect(await res.json()).toEqual(blocked);
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'content_filter',
      finishReasons: ['PROHIBITED_CONTENT'],
      usage: { inputTokens: 7, outputTokens: 0, source: 'provider' },
    });
  });
});

describe.each(['sse', 'json-array'] as const)('streamGenerateContent as %s', (format) => {
  const stream = (behavior: Partial<Behavior>) =>
    call('streamGenerateContent', behavior, request, STREAM_QUERY[format]);

  it('the caller gets the very same stream; usage from the last chunk, never added up', async () => {
    env.setup();
    const behavior = { outputTokens: 5, msPerToken: 15, cacheReadTokens: 2, reasoningTokens: 3 };
    const plain = await fetch(
      `${env.sim.url}${BASE}:streamGenerateContent${STREAM_QUERY[format]}`,
      post(request, behavior),
    );
    const expected = streamValues(await plain.text(), format);
    env.sim.reset();
    const res = await stream(behavior);
    expect(res.headers.get('content-type')).toContain(
      format === 'sse' ? 'text/event-stream' : 'application/json',
    );
    expect(streamValues(await res.text(), format)).toEqual(expected);
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    expect(record.usage).toEqual({
      inputTokens: truth.inputTokens,
      outputTokens: truth.outputTokens,
      cacheReadTokens: 2,
      cacheWriteTokens: 0,
      reasoningTokens: 3,
      source: 'provider',
    });
    expect(record).toMatchObject({
      outcome: 'ok',
      chunks: 6,
      finishReasons: ['STOP'],
      request: { stream: true, model: MODEL },
    });
    expect(record.cost.totalNanos).toBe(expectedCostNanos(PRICES[MODEL], record.usage!));
    // Each element was read as it arrived: the first and last token are about as far apart as
    // the simulator spaced them (a reader that waited for the end would see them together).
    expect(record.timing.generation?.source).toBe('observed');
    expect(truth.generationMs).toBe(60);
    expect(record.timing.generationMs!).toBeGreaterThan(truth.generationMs / 2);
    expect(record.timing.firstTokenMs! - record.timing.startMs).toBeGreaterThanOrEqual(
      truth.firstTokenAt! - truth.receivedAt - 5,
    );
  });

  it.each([
    { name: 'byte-sized network chunks', behavior: { chunking: 'byte' } },
    { name: 'random network chunks', behavior: { chunking: 'random' } },
    { name: 'noise between events (garbage)', behavior: { fault: 'garbage', chunking: 'random' } },
  ] as const)('$name give the same figures', async ({ behavior }) => {
    env.setup();
    const res = await stream({ outputTokens: 4, ...behavior });
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'ok',
      finishReasons: ['STOP'],
      usage: { inputTokens: env.sim.calls[0]!.inputTokens, outputTokens: 4, source: 'provider' },
    });
    // SSE noise includes two stray events (an unknown one and non-JSON data), counted as events.
    const stray = 'fault' in behavior && format === 'sse' ? 2 : 0;
    expect(record.chunks).toBe(5 + stray);
  });

  it('an HTTP error is classified from the Google error body', async () => {
    env.setup();
    const res = await stream({ fault: 'rate_limit', retryAfterS: 7 });
    expect(res.status).toBe(429);
    const body = await res.json();
    // Without alt=sse, the refusal is an array too.
    expect(Array.isArray(body)).toBe(format === 'json-array');
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'rate_limited',
      errorCode: 'RESOURCE_EXHAUSTED',
      httpStatus: 429,
      retryable: true,
      // Gemini sends no Retry-After header: the wait is read from the body's RetryInfo.
      retryAfterMs: 7_000,
      usage: null,
    });
  });

  it('an error inside the stream ends the call as an error, keeping the usage so far', async () => {
    env.setup();
    const res = await stream({ outputTokens: 8, fault: 'error_event', faultAfterTokens: 2 });
    await res.text();
    const record = await env.probe.record();
    const truth = await env.sim.waitForCall();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'stream_interrupted',
      errorCode: 'INTERNAL',
    });
    expect(record.usage).toMatchObject({ inputTokens: truth.inputTokens, outputTokens: 2 });
    expect(truth.outputTokens).toBe(2);
  });

  it('a cut stream is stream_interrupted with the tokens that arrived', async () => {
    env.setup();
    const res = await stream({ outputTokens: 8, fault: 'cut_stream', faultAfterTokens: 3 });
    await expect(res.text()).rejects.toThrow();
    const record = await env.probe.record();
    const truth = await env.sim.waitForCall();
    expect(truth.outcome).toBe('cut');
    expect(record).toMatchObject({ outcome: 'error', errorType: 'stream_interrupted', chunks: 3 });
    expect(record.usage).toMatchObject({ inputTokens: truth.inputTokens, outputTokens: truth.outputTokens });
    expect(truth.outputTokens).toBe(3);
    expect(record.cost.totalNanos).toBe(expectedCostNanos(PRICES[MODEL], record.usage!));
  });

  it('a caller that goes away is cancelled; the simulator sees the close', async () => {
    env.setup();
    const res = await stream({ outputTokens: 200, msPerToken: 15 });
    const text = await readThenCancel(res, (t) => (t.match(/"text"/g) ?? []).length >= 3);
    const received = (text.match(/"text"/g) ?? []).length;
    const truth = await env.sim.waitForCall((c) => c.clientClosed);
    const record = await env.probe.record();
    expectCancelledUsage(record, truth, received);
    expect(truth.outputTokens).toBeLessThan(200);
  });

  it('a content filter stops the answer with SAFETY: a content_filter error with exact usage', async () => {
    env.setup();
    const res = await stream({ outputTokens: 8, fault: 'content_filter', faultAfterTokens: 2 });
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'content_filter',
      finishReasons: ['SAFETY'],
      usage: { outputTokens: 2, source: 'provider' },
    });
  });
});

describe('HTTP errors of generateContent', () => {
  const cases: { fault: Fault; status: number; errorType: string | null; errorCode: string }[] = [
    { fault: 'rate_limit', status: 429, errorType: 'rate_limited', errorCode: 'RESOURCE_EXHAUSTED' },
    { fault: 'overloaded', status: 503, errorType: 'overloaded', errorCode: 'UNAVAILABLE' },
    { fault: 'server_error', status: 500, errorType: 'server_error', errorCode: 'INTERNAL' },
    {
      fault: 'context_length',
      status: 400,
      errorType: 'context_length_exceeded',
      errorCode: 'INVALID_ARGUMENT',
    },
    { fault: 'not_found', status: 404, errorType: 'not_found', errorCode: 'NOT_FOUND' },
    { fault: 'forbidden', status: 403, errorType: 'auth', errorCode: 'PERMISSION_DENIED' },
    // A bad key is a 400 INVALID_ARGUMENT on the Generative Language API; its reason names it.
    { fault: 'auth', status: 400, errorType: null, errorCode: 'API_KEY_INVALID' },
  ];
  it.each(cases)('$fault → $status $errorCode', async ({ fault, status, errorType, errorCode }) => {
    env.setup();
    const res = await call('generateContent', { fault });
    expect(res.status).toBe(status);
    await res.json();
    const record = await env.probe.record();
    expect(record).toMatchObject({ outcome: 'error', httpStatus: status, errorCode, usage: null });
    if (errorType) expect(record.errorType).toBe(errorType);
    expect(env.sim.calls[0]).toMatchObject({ outcome: 'fault', inputTokens: 0, outputTokens: 0 });
  });

  it('a body cut in half is an error; the input is counted from the request', async () => {
    env.setup();
    const res = await call('generateContent', { fault: 'cut_stream' });
    await expect(res.text()).rejects.toThrow();
    const record = await env.probe.record();
    expect(record.outcome).toBe('error');
    expect(record.usage).toMatchObject({ source: 'estimated', inputTokens: env.sim.calls[0]!.inputTokens });
  });
});

describe('embeddings and token counts', () => {
  it('embedContent: no usage on the wire, so the input is counted', async () => {
    env.setup();
    const res = await env.probe.meter.fetch(
      `${env.sim.url}/v1beta/models/text-embedding-004:embedContent`,
      post({ content: { parts: [{ text: 'the quick brown fox' }] } }),
    );
    expect(((await res.json()) as { embedding: { values: number[] } }).embedding.values).toHaveLength(8);
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    expect(record).toMatchObject({
      operation: 'embeddings',
      provider: 'gcp.gemini',
      requestModel: 'text-embedding-004',
      usage: { inputTokens: truth.inputTokens, outputTokens: 0, source: 'estimated' },
    });
    expect(record.cost.totalNanos).toBe(Math.round(truth.inputTokens * 100));
  });

  it('batchEmbedContents counts every request', async () => {
    env.setup();
    const requests = ['a b c', 'd e'].map((text) => ({
      model: 'models/text-embedding-004',
      content: { parts: [{ text }] },
    }));
    const res = await env.probe.meter.fetch(
      `${env.sim.url}/v1beta/models/text-embedding-004:batchEmbedContents`,
      post({ requests }),
    );
    expect(((await res.json()) as { embeddings: unknown[] }).embeddings).toHaveLength(2);
    const record = await env.probe.record();
    expect(record.usage?.inputTokens).toBe(env.sim.calls[0]!.inputTokens);
    expect(record.operation).toBe('embeddings');
  });

  it('countTokens: operation count_tokens, the count as input', async () => {
    env.setup();
    const res = await call('countTokens', {}, { contents: request.contents });
    const json = (await res.json()) as { totalTokens: number };
    const record = await env.probe.record();
    expect(json.totalTokens).toBe(env.sim.calls[0]!.inputTokens);
    expect(record).toMatchObject({
      operation: 'count_tokens',
      usage: { inputTokens: json.totalTokens, outputTokens: 0 },
    });
    assertSpan(env.probe.tel.llmSpans()[0], { name: `count_tokens ${MODEL}` });
  });
});

describe('URL shapes, providers and the API key', () => {
  const cases = [
    {
      name: 'Vertex AI regional',
      url: `https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/publishers/google/models/${MODEL}:generateContent`,
      provider: 'gcp.vertex_ai',
    },
    {
      name: 'Vertex AI express (global, API key)',
      url: `https://aiplatform.googleapis.com/v1/publishers/google/models/${MODEL}:streamGenerateContent?alt=sse`,
      provider: 'gcp.vertex_ai',
    },
    {
      name: 'Generative Language API',
      url: `https://generativelanguage.googleapis.com/v1beta/models/${MODEL}:generateContent`,
      provider: 'gcp.gemini',
    },
    {
      name: 'a tuned model',
      url: 'https://generativelanguage.googleapis.com/v1beta/tunedModels/my-tuned-model:generateContent',
      provider: 'gcp.gemini',
      model: 'my-tuned-model',
    },
  ];
  it.each(cases)('$name → $provider', async ({ url, provider, model }) => {
    env.setup();
    const res = await env.probe.meter.wrapFetch(toSimulator(env.sim))(
      url,
      post(request, { outputTokens: 3 }),
    );
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      provider,
      requestModel: model ?? MODEL,
      serverAddress: new URL(url).hostname,
      serverPort: 443,
      usage: { outputTokens: 3, source: 'provider' },
    });
  });

  it('a key in ?key= or x-goog-api-key never reaches a span, a metric or a record', async () => {
    env.setup({ apiKeyHashSalt: 'salt' });
    const secretInQuery = 'AIzaSy-QUERY-secret-9876543210';
    const metered = env.probe.meter.wrapFetch(toSimulator(env.sim));
    const query = `?alt=sse&key=${secretInQuery}`;
    const res1 = await metered(
      `https://generativelanguage.googleapis.com${BASE}:streamGenerateContent${query}`,
      post(request),
    );
    await res1.text();
    const res2 = await metered(
      `https://generativelanguage.googleapis.com${BASE}:generateContent`,
      post(request, {}, { 'x-goog-api-key': KEY }),
    );
    await res2.text();
    await env.probe.meter.flush();
    expect(env.sim.calls[0]!.query.key, 'the key did reach the server').toBe(secretInQuery);
    expect(env.probe.records).toHaveLength(2);
    const exported = await everythingExported(env.probe);
    expect(exported).not.toContain(secretInQuery);
    expect(exported).not.toContain(KEY);
    expect(exported).not.toContain('key=');
    // The header key is hashed for a per-key breakdown.
    expect(env.probe.records[1]!.attribution.apiKeyHash).toMatch(/^[0-9a-f]{12}$/);
  });

  it('other Google methods and GETs pass through unmetered', async () => {
    env.setup();
    const metered = env.probe.meter.wrapFetch(toSimulator(env.sim));
    await (
      await metered(`https://aiplatform.googleapis.com/v1/publishers/google/models/x:predict`, post({}))
    ).text();
    await (await metered(`https://generativelanguage.googleapis.com${BASE}`, { method: 'GET' })).text();
    await env.probe.meter.flush();
    expect(env.probe.records).toHaveLength(0);
  });
});

describe('usageMetadata normalisation', () => {
  it.each([
    {
      name: 'plain',
      usage: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 },
      expected: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, reasoningTokens: 0 },
    },
    {
      name: 'cache reads are inside the prompt count',
      usage: { promptTokenCount: 10, cachedContentTokenCount: 4, candidatesTokenCount: 5 },
      expected: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 4, reasoningTokens: 0 },
    },
    {
      name: 'thoughts are output outside candidates',
      usage: { promptTokenCount: 10, candidatesTokenCount: 5, thoughtsTokenCount: 20, totalTokenCount: 35 },
      expected: { inputTokens: 10, outputTokens: 25, cacheReadTokens: 0, reasoningTokens: 20 },
    },
    {
      name: 'tool-use prompt tokens are input outside the prompt count',
      usage: {
        promptTokenCount: 10,
        toolUsePromptTokenCount: 30,
        candidatesTokenCount: 5,
        totalTokenCount: 45,
      },
      expected: { inputTokens: 40, outputTokens: 5, cacheReadTokens: 0, reasoningTokens: 0 },
    },
    {
      name: 'a chunk before any output',
      usage: { promptTokenCount: 10, totalTokenCount: 10 },
      expected: { inputTokens: 10, outputTokens: 0, cacheReadTokens: 0, reasoningTokens: 0 },
    },
  ])('$name', ({ usage, expected }) => {
    expect(geminiUsage(usage)).toEqual({ ...expected, cacheWriteTokens: 0 });
    // Input plus output is the provider's own total whenever it sends one.
    const total = (usage as { totalTokenCount?: number }).totalTokenCount;
    if (total !== undefined) expect(expected.inputTokens + expected.outputTokens).toBe(total);
  });

  it('no prompt count, no usage', () => {
    expect(geminiUsage({ totalTokenCount: 3 })).toBeNull();
    expect(geminiUsage(null)).toBeNull();
  });
});
