import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/index.js';
import { type Behavior, type Fault, outputWords, type SimCall } from '../../src/sim/index.js';
import {
  expectCancelledUsage,
  expectedCostNanos,
  post,
  readThenCancel,
  useProbe,
} from '../helpers/metered.js';
import { assertSpan } from '../helpers/otel.js';

/**
 * Ollama's native API through meter.fetch: JSON and NDJSON (streamed by default), the durations
 * of the final object as the provider-reported split, errors, cut and cancelled streams, and the
 * detection heuristic that keeps other servers' `/api/chat` out.
 */

const MODEL = 'llama3.2';
// Local inference has no catalog price: the user's own.
const PRICE = { input: 0.05, output: 0.1 };
const PRICES = { [MODEL]: PRICE, 'nomic-embed-text': { input: 0.01, output: 0 } };

const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about the quick brown fox.' },
];

const env = useProbe({ prices: PRICES });

function call(path: string, body: Record<string, unknown>, behavior: Partial<Behavior> = {}) {
  return env.probe.meter.fetch(`${env.sim.url}${path}`, post({ model: MODEL, ...body }, behavior));
}

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** The provider-reported split equals what the simulator reported, to the nanosecond it sent. */
function expectReportedSplit(record: CallRecord, truth: SimCall): void {
  const ms = (value: number) => Math.round(value * 1e6) / 1e6;
  expect(record.timing.queue).toEqual({ ms: ms(truth.queueMs), source: 'provider' });
  expect(record.timing.prefill).toEqual({ ms: ms(truth.prefillMs), source: 'provider' });
  expect(record.timing.generation).toEqual({
    ms: ms(truth.reasoningMs + truth.generationMs),
    source: 'provider',
  });
}

const timed = { queueMs: 12, prefillMsPerToken: 0.25, msPerToken: 3, outputTokens: 5 };

describe('/api/chat', () => {
  it('stream: false answers JSON; tokens, split and cost from the final object', async () => {
    env.setup();
    const res = await call(
      '/api/chat',
      { messages, stream: false, options: { num_predict: 50, temperature: 0.3 } },
      timed,
    );
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = (await res.json()) as { done: boolean; prompt_eval_count: number; eval_count: number };
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    expect(body).toMatchObject({ done: true, prompt_eval_count: truth.inputTokens, eval_count: 5 });
    expect(record).toMatchObject({
      provider: 'ollama',
      operation: 'chat',
      requestModel: MODEL,
      responseModel: MODEL,
      outcome: 'ok',
      finishReasons: ['stop'],
      chunks: 0,
      request: { stream: false, maxTokens: 50, temperature: 0.3, choices: null },
      usage: { inputTokens: truth.inputTokens, outputTokens: truth.outputTokens, source: 'provider' },
    });
    expectReportedSplit(record, truth);
    expect(record.cost.totalNanos).toBe(expectedCostNanos(PRICE, record.usage!));
    assertSpan(env.probe.tel.llmSpans()[0], {
      name: `chat ${MODEL}`,
      attributes: {
        'gen_ai.provider.name': 'ollama',
        'gen_ai.request.stream': false,
        'llm_meter.queue.source': 'provider',
        'llm_meter.prefill.source': 'provider',
        'llm_meter.generation.source': 'provider',
      },
    });
  });

  it('streams NDJSON by default (no `stream` field); the caller gets every line unchanged', async () => {
    env.setup();
    const res = await call('/api/chat', { messages }, { ...timed, chunking: 'random' });
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const received = lines(await res.text());
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    expect(received).toHaveLength(6);
    expect(received.at(-1)).toMatchObject({ done: true, eval_count: 5 });
    expect(received.map((l) => (l.message as { content: string }).content).join('')).toBe(
      outputWords(5).join(''),
    );
    expect(record).toMatchObject({
      outcome: 'ok',
      chunks: 6,
      request: { stream: true },
      usage: { inputTokens: truth.inputTokens, outputTokens: 5, source: 'provider' },
    });
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
    expectReportedSplit(record, truth);
  });

  it('blank lines between objects (garbage) and byte-sized chunks give the same figures', async () => {
    env.setup();
    const res = await call('/api/chat', { messages }, { ...timed, fault: 'garbage', chunking: 'byte' });
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'ok',
      chunks: 6,
      usage: { outputTokens: 5, source: 'provider' },
    });
    expectReportedSplit(record, env.sim.calls[0]!);
  });

  it('tool calls: counted, output, and they mark the first token', async () => {
    env.setup();
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
    const res = await call('/api/chat', { messages, tools }, { toolCalls: 2, outputTokens: 6 });
    const received = lines(await res.text());
    const record = await env.probe.record();
    expect(received.filter((l) => (l.message as { tool_calls?: unknown }).tool_calls)).toHaveLength(2);
    expect(record.toolCalls).toBe(2);
    expect(record.request.toolCount).toBe(1);
    expect(record.timing.firstTokenMs).not.toBeNull();
    expect(record.usage?.outputTokens).toBe(env.sim.calls[0]!.outputTokens);
  });

  it('a cut stream: stream_interrupted, tokens counted exactly from the request and the lines read', async () => {
    env.setup();
    const res = await call(
      '/api/chat',
      { messages },
      { outputTokens: 9, fault: 'cut_stream', faultAfterTokens: 4 },
    );
    await expect(res.text()).rejects.toThrow();
    const record = await env.probe.record();
    const truth = await env.sim.waitForCall();
    expect(truth).toMatchObject({ outcome: 'cut', outputTokens: 4 });
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'stream_interrupted',
      chunks: 4,
      usage: { inputTokens: truth.inputTokens, outputTokens: 4, source: 'estimated' },
    });
    // No final object: no provider split.
    expect(record.timing.prefill?.source).not.toBe('provider');
    expect(record.cost.totalNanos).toBe(expectedCostNanos(PRICE, record.usage!));
  });

  it('an error line inside the stream interrupts it', async () => {
    env.setup();
    const res = await call(
      '/api/chat',
      { messages },
      { outputTokens: 9, fault: 'error_event', faultAfterTokens: 2 },
    );
    const received = lines(await res.text());
    expect(received.at(-1)).toHaveProperty('error');
    const record = await env.probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'stream_interrupted',
      usage: { inputTokens: env.sim.calls[0]!.inputTokens, outputTokens: 2 },
    });
  });

  it('a caller that goes away is cancelled; the simulator sees the close', async () => {
    env.setup();
    const res = await call('/api/chat', { messages }, { outputTokens: 200, msPerToken: 15 });
    const text = await readThenCancel(res, (t) => t.split('\n').length > 3);
    const received = text.split('\n').filter((l) => l.endsWith('}')).length;
    const truth = await env.sim.waitForCall((c) => c.clientClosed);
    const record = await env.probe.record();
    expectCancelledUsage(record, truth, received);
  });
});

describe('/api/generate', () => {
  it.each([false, true])('stream: %s — text_completion, tokens and split', async (stream) => {
    env.setup();
    const res = await call(
      '/api/generate',
      { prompt: 'Why is the sky blue?', system: 'Be brief.', stream },
      timed,
    );
    const text = await res.text();
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    const last = stream ? lines(text).at(-1) : JSON.parse(text);
    expect(last).toMatchObject({ done: true, done_reason: 'stop' });
    expect(record).toMatchObject({
      operation: 'text_completion',
      outcome: 'ok',
      chunks: stream ? 6 : 0,
      usage: { inputTokens: truth.inputTokens, outputTokens: 5, source: 'provider' },
    });
    expectReportedSplit(record, truth);
    assertSpan(env.probe.tel.llmSpans()[0], { name: `text_completion ${MODEL}` });
  });

  it('num_predict caps the answer: done_reason length', async () => {
    env.setup();
    const res = await call(
      '/api/generate',
      { prompt: 'Go on', options: { num_predict: 3 } },
      { outputTokens: 10 },
    );
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      finishReasons: ['length'],
      request: { maxTokens: 3 },
      usage: { outputTokens: 3 },
    });
  });

  it('an interrupted generate stream is estimated exactly from the prompt', async () => {
    env.setup();
    const res = await call(
      '/api/generate',
      { prompt: 'Why is the sky blue?', system: 'Be brief.' },
      {
        outputTokens: 9,
        fault: 'cut_stream',
        faultAfterTokens: 5,
      },
    );
    await expect(res.text()).rejects.toThrow();
    const record = await env.probe.record();
    expect(record.usage).toMatchObject({
      inputTokens: env.sim.calls[0]!.inputTokens,
      outputTokens: 5,
      source: 'estimated',
    });
  });
});

describe('embeddings', () => {
  it('/api/embed: prompt_eval_count is the input', async () => {
    env.setup();
    const res = await env.probe.meter.fetch(
      `${env.sim.url}/api/embed`,
      post({ model: 'nomic-embed-text', input: ['the quick brown fox', 'lazy dog'] }, { queueMs: 5 }),
    );
    expect(((await res.json()) as { embeddings: unknown[] }).embeddings).toHaveLength(2);
    const record = await env.probe.record();
    const truth = env.sim.calls[0]!;
    expect(record).toMatchObject({
      operation: 'embeddings',
      request: { stream: false },
      usage: { inputTokens: truth.inputTokens, outputTokens: 0, source: 'provider' },
    });
    expect(record.timing.queue).toEqual({ ms: 5, source: 'provider' });
    expect(record.cost.totalNanos).toBe(Math.round(truth.inputTokens * 10));
  });

  it('legacy /api/embeddings: no usage on the wire, the prompt is counted', async () => {
    env.setup();
    const res = await env.probe.meter.fetch(
      `${env.sim.url}/api/embeddings`,
      post({ model: 'nomic-embed-text', prompt: 'the quick brown fox' }),
    );
    expect(((await res.json()) as { embedding: unknown[] }).embedding).toHaveLength(8);
    const record = await env.probe.record();
    expect(record).toMatchObject({
      provider: 'ollama',
      operation: 'embeddings',
      usage: { inputTokens: env.sim.calls[0]!.inputTokens, source: 'estimated' },
    });
  });
});

describe('HTTP errors', () => {
  const cases: { fault: Fault; status: number; errorType: string }[] = [
    { fault: 'not_found', status: 404, errorType: 'not_found' },
    { fault: 'overloaded', status: 503, errorType: 'overloaded' },
    { fault: 'server_error', status: 500, errorType: 'server_error' },
    { fault: 'context_length', status: 400, errorType: 'context_length_exceeded' },
    { fault: 'rate_limit', status: 429, errorType: 'rate_limited' },
    { fault: 'auth', status: 401, errorType: 'auth' },
  ];
  it.each(cases)('$fault → $status $errorType, also for a stream', async ({ fault, status, errorType }) => {
    env.setup();
    const res = await call('/api/chat', { messages }, { fault });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toBeTypeOf('string');
    const record = await env.probe.record();
    expect(record).toMatchObject({ outcome: 'error', httpStatus: status, errorType, usage: null });
  });
});

describe('detection: by the path and the model Ollama requires, never by fields it ignores', () => {
  const answer = { ok: true };
  // Ollama answers 400 "model is required" to these: on a path other servers share, they are theirs.
  const notOllama: { name: string; path: string; init: RequestInit }[] = [
    {
      name: 'Vercel AI SDK UI messages (parts, no model)',
      path: '/api/chat',
      init: post({ id: 'x', messages: [{ id: '1', role: 'user', parts: [{ type: 'text', text: 'hi' }] }] }),
    },
    { name: 'an empty model', path: '/api/chat', init: post({ model: '', messages: [] }) },
    {
      name: 'a model that is not a name',
      path: '/api/chat',
      init: post({ model: { id: 'gpt-4o' }, messages: [] }),
    },
    { name: 'a form upload', path: '/api/chat', init: { method: 'POST', body: new FormData() } },
    { name: 'plain text', path: '/api/chat', init: { method: 'POST', body: 'hello' } },
  ];
  it.each(notOllama)('$name passes through untouched', async ({ path, init }) => {
    env.setup();
    const seen: { input: unknown; init: RequestInit | undefined }[] = [];
    const base = async (input: string | URL | Request, given?: RequestInit) => {
      seen.push({ input, init: given });
      return Response.json(answer);
    };
    const res = await env.probe.meter.wrapFetch(base)(`http://localhost:3000${path}`, init);
    expect(await res.json()).toEqual(answer);
    expect(seen[0]!.init, 'the very same init').toBe(init);
    await env.probe.meter.flush();
    expect(env.probe.records).toHaveLength(0);
    expect(env.probe.tel.llmSpans()).toHaveLength(0);
  });

  // Ollama's Go decoder skips fields it does not know, so it serves these: they are metered. (They
  // were once let through for their extra fields, which a red-team review showed to be a way past
  // budgets and guards.) A field llm-meter reads, of a type Ollama does not take, makes the call
  // unparsed, never unmetered.
  const metered: { name: string; path: string; body: Record<string, unknown>; parsed: boolean }[] = [
    {
      name: 'UI messages with a model',
      path: '/api/chat',
      body: { model: MODEL, messages: [{ role: 'user', parts: [{ type: 'text', text: 'hi' }] }] },
      parsed: true,
    },
    {
      name: '"parts": null beside the content',
      path: '/api/chat',
      body: { model: MODEL, messages: [{ role: 'user', content: 'hi', parts: null }] },
      parsed: true,
    },
    { name: 'no messages', path: '/api/chat', body: { model: MODEL, prompt: 'hi' }, parsed: true },
    {
      name: 'generate with messages',
      path: '/api/generate',
      body: { model: MODEL, messages: [] },
      parsed: true,
    },
    { name: 'embed without input', path: '/api/embed', body: { model: MODEL, text: 'x' }, parsed: true },
    {
      name: 'content parts (an OpenAI-shaped body)',
      path: '/api/chat',
      body: { model: MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
      parsed: false,
    },
    {
      name: 'a non-boolean stream',
      path: '/api/chat',
      body: { model: MODEL, messages: [], stream: 'yes' },
      parsed: false,
    },
  ];
  it.each(metered)('$name is metered (request.parsed: $parsed) and sent as it came', async (c) => {
    env.setup();
    const res = await env.probe.meter.fetch(`${env.sim.url}${c.path}`, post(c.body));
    await res.arrayBuffer();
    const record = await env.probe.record();
    expect(record).toMatchObject({ provider: 'ollama', requestModel: MODEL, request: { parsed: c.parsed } });
    expect(env.sim.calls[0]!.body).toEqual(c.body);
  });

  it('an Ollama body on any host and port is metered', async () => {
    env.setup();
    const base = async () =>
      new Response(
        `${JSON.stringify({ model: MODEL, message: { role: 'assistant', content: 'hi' }, done: true, prompt_eval_count: 4, eval_count: 1 })}\n`,
        {
          headers: { 'content-type': 'application/x-ndjson' },
        },
      );
    const res = await env.probe.meter.wrapFetch(base)(
      'https://gpu-box.internal/api/chat',
      post({ model: MODEL, messages }),
    );
    await res.text();
    const record = await env.probe.record();
    expect(record).toMatchObject({
      provider: 'ollama',
      usage: { inputTokens: 4, outputTokens: 1 },
      chunks: 1,
    });
  });
});
