import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/index.js';
import type { SimCall } from '../../src/sim/index.js';
import { caught, chatMessages, type Harness, useHarness } from '../helpers/harness.js';
import { assertSpan } from '../helpers/otel.js';

/**
 * A caller that goes away is an outcome, not an error: the upstream request is closed at once
 * (the simulator sees the socket close before its answer is done) and the record keeps what
 * arrived, counted with the tokenizer.
 */

const env = useHarness();

// Long enough that no stream ends on its own during a test; the tests never wait for it.
const PLANNED = 400;

function chatRequest(stream: boolean, signal?: AbortSignal): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream }),
    ...(signal ? { signal } : {}),
  };
}

/** Reads SSE data lines from a body until `count` content deltas have arrived. */
async function readDeltas(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<number> {
  const decoder = new TextDecoder();
  let text = '';
  let seen = 0;
  while (seen < count) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    seen = (text.match(/"content":"[^"]+"/g) ?? []).length;
  }
  return seen;
}

/** A harness whose simulator streams slowly, and more than any test reads. */
function slowStreams(): Harness {
  env.sim.setDefaults({ msPerToken: 15, outputTokens: PLANNED });
  return env.harness();
}

const openaiStream = (h: Harness) =>
  h.openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages, stream: true });

const anthropicRequest = {
  model: 'claude-sonnet-4-5',
  max_tokens: 1000,
  messages: [{ role: 'user' as const, content: 'Tell me about the quick brown fox.' }],
};

/** The closed call's truth, and the record checked against it. */
async function expectCancelled(
  h: Harness,
  received: number,
): Promise<{ truth: SimCall; record: CallRecord }> {
  const truth = await env.sim.waitForCall();
  expect(truth.clientClosed, 'the simulator saw the client close').toBe(true);
  expect(truth.outcome).toBe('client_closed');
  expect(truth.outputTokens, 'generation stopped early').toBeLessThan(PLANNED);
  const record = await h.record();
  expect(record.outcome).toBe('cancelled');
  expect(record.errorType).toBeNull();
  expect(record.httpStatus).toBe(200);
  expect(record.usage?.source).toBe('estimated');
  expect(record.usage?.outputTokens, 'output received is counted').toBeGreaterThanOrEqual(received);
  expect(record.usage?.outputTokens, 'never more than was sent').toBeLessThanOrEqual(truth.outputTokens);
  expect(record.usage?.inputTokens, 'input estimated').toBe(truth.inputTokens);
  expect(record.cost.outputNanos, 'what arrived is costed').toBeGreaterThan(0);
  const span = h.tel.llmSpans()[0];
  assertSpan(span, { attributes: { 'llm_meter.outcome': 'cancelled' } });
  expect(span!.attributes['error.type'], 'a cancellation is not an error').toBeUndefined();
  expect(span!.status.code, 'span status is not ERROR').not.toBe(2);
  return { truth, record };
}

describe('cancellation through meter.fetch', () => {
  it('AbortController.abort() mid-stream', async () => {
    const h = slowStreams();
    const controller = new AbortController();
    const res = await h.meter.fetch(
      `${env.sim.url}/v1/chat/completions`,
      chatRequest(true, controller.signal),
    );
    const reader = res.body!.getReader();
    const received = await readDeltas(reader, 3);
    controller.abort();
    const error = await caught(() => reader.read());
    expect((error as Error).name, 'the caller sees its own AbortError').toBe('AbortError');
    await expectCancelled(h, received);
  });

  it('response.body.cancel() mid-stream', async () => {
    const h = slowStreams();
    const res = await h.meter.fetch(`${env.sim.url}/v1/chat/completions`, chatRequest(true));
    const reader = res.body!.getReader();
    const received = await readDeltas(reader, 3);
    await reader.cancel();
    await expectCancelled(h, received);
  });

  it('abort before the response headers: cancelled, nothing generated, nothing billed', async () => {
    const h = env.harness();
    env.sim.setDefaults({ queueMs: 5_000 });
    const controller = new AbortController();
    const pending = h.meter.fetch(
      `${env.sim.url}/v1/chat/completions`,
      chatRequest(false, controller.signal),
    );
    // Abort once the simulator has the request (it is queueing).
    while (env.sim.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    expect(((await caught(() => pending)) as Error).name).toBe('AbortError');
    const truth = await env.sim.waitForCall();
    expect(truth.clientClosed).toBe(true);
    expect(truth.status, 'no answer was sent').toBe(0);
    const record = await h.record();
    expect(record).toMatchObject({ outcome: 'cancelled', errorType: null, httpStatus: null, usage: null });
    expect(record.cost.totalNanos).toBe(0);
  });
});

describe('cancellation through the official SDKs', () => {
  it('OpenAI: breaking out of for await', async () => {
    const h = slowStreams();
    const stream = await openaiStream(h);
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) received++;
      if (received === 4) break;
    }
    await expectCancelled(h, received);
  });

  it('OpenAI: stream.controller.abort()', async () => {
    const h = slowStreams();
    const stream = await openaiStream(h);
    let received = 0;
    const error = await caught(async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) received++;
        if (received === 2) stream.controller.abort();
      }
    });
    // The SDK ends the iteration quietly or with its abort error; either way it is the caller's.
    if (error) expect((error as Error).name).toMatch(/Abort/);
    await expectCancelled(h, received);
  });

  it('Anthropic: breaking out of for await', async () => {
    const h = slowStreams();
    const stream = await h.anthropic.messages.create({ ...anthropicRequest, stream: true });
    let received = 0;
    for await (const event of stream) {
      if (event.type === 'content_block_delta') received++;
      if (received === 5) break;
    }
    const truth = await env.sim.waitForCall();
    const { record } = await expectCancelled(h, received);
    // Anthropic said the input in message_start: that figure is kept.
    expect(record.usage?.inputTokens).toBe(truth.inputTokens);
  });

  it('Anthropic: MessageStream.abort()', async () => {
    const h = slowStreams();
    const stream = h.anthropic.messages.stream(anthropicRequest);
    let received = 0;
    await new Promise<void>((resolve) => {
      stream.on('text', () => {
        received++;
        if (received === 3) {
          stream.abort();
          resolve();
        }
      });
    });
    await caught(() => stream.done());
    await expectCancelled(h, received);
  });
});
