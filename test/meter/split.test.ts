import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter, type FetchLike } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { SSE_BYTES, SSE_HEADERS, SSE_USAGE } from '../fixtures/fetch-recordings.js';
import { splitAt } from '../helpers/bytes.js';
import { bodyBytes, type ReplayServer, startReplay } from '../helpers/replay.js';

/**
 * SSE decoding through the whole meter (wrapper, body tap, parser, usage-hiding rewriter,
 * assembler) for a recorded stream cut in two at every byte position: CRLF line ends, a
 * multi-line data field, comments, a data line that is not JSON, and characters of two, three
 * and four UTF-8 bytes. Whatever the cut, the record and the caller's bytes are the same.
 */

const URL_ = 'http://llm.test/v1/chat/completions';
const decoder = new TextDecoder();

/** A base fetch whose response body arrives as exactly the given chunks. */
function servingChunks(next: () => Uint8Array[]): FetchLike {
  return async () => {
    const chunks = next();
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks.shift();
        if (chunk) controller.enqueue(chunk.slice());
        else controller.close();
      },
    });
    return new Response(body, { status: 200, headers: SSE_HEADERS });
  };
}

function request(includeUsage: boolean): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    }),
  };
}

/** The stream cut off before its usage chunk: usage must be counted from the decoded text. */
const NO_USAGE = SSE_BYTES.subarray(
  0,
  Buffer.from(SSE_BYTES).lastIndexOf('data: ', Buffer.from(SSE_BYTES).indexOf('"choices":[],')),
);

/** Feeds every two-piece cut of `bytes` through one meter; returns the records and caller bytes. */
async function everySplit(bytes: Uint8Array, includeUsage: boolean) {
  const records: CallRecord[] = [];
  let cut = 0;
  const meter = createMeter({
    database: false,
    fetch: servingChunks(() => [bytes.subarray(0, cut), bytes.subarray(cut)].filter((c) => c.length > 0)),
    onRecord: (r) => records.push(r),
  });
  const outputs: string[] = [];
  for (cut = 0; cut <= bytes.length; cut++) {
    const res = await meter.fetch(URL_, request(includeUsage));
    outputs.push(decoder.decode(await bodyBytes(res)));
  }
  await meter.shutdown();
  expect(records).toHaveLength(bytes.length + 1);
  return { records, outputs };
}

/** The parts of a record that depend on decoding (not on time or ids). */
const decoded = (r: CallRecord) => ({
  usage: r.usage,
  outcome: r.outcome,
  errorType: r.errorType,
  finishReasons: r.finishReasons,
  responseId: r.responseId,
  responseModel: r.responseModel,
  chunks: r.chunks,
  firstToken: r.timing.firstTokenMs !== null,
});

describe('a recorded stream cut at every byte position', () => {
  it('provider usage: identical record and caller bytes for every cut', async () => {
    const { records, outputs } = await everySplit(SSE_BYTES, true);
    const expected = decoded(records[0]!);
    expect(expected).toMatchObject({
      usage: { ...SSE_USAGE, source: 'provider' },
      outcome: 'ok',
      finishReasons: ['stop'],
      responseId: 'chatcmpl-fixed0001',
      chunks: 9,
      firstToken: true,
    });
    for (const [cut, record] of records.entries()) expect(decoded(record), `cut at ${cut}`).toEqual(expected);
    const whole = decoder.decode(SSE_BYTES);
    for (const [cut, out] of outputs.entries()) expect(out, `caller bytes, cut at ${cut}`).toBe(whole);
  });

  it('estimated usage (no usage chunk): the same count for every cut, so no character was mangled', async () => {
    const { records } = await everySplit(NO_USAGE, true);
    const expected = decoded(records[0]!);
    // The text received, counted with gpt-4o-mini's o200k_base: a character mangled by a cut
    // (U+FFFD) would count differently.
    expect(expected.usage).toMatchObject({
      source: 'estimated',
      outputTokens: countTokens('Grüße, 日本語 🦊 fox'),
    });
    expect(expected.outcome).toBe('error');
    expect(expected.errorType).toBe('stream_interrupted');
    for (const [cut, record] of records.entries()) expect(decoded(record), `cut at ${cut}`).toEqual(expected);
  });

  it('through the usage-hiding rewriter: the caller gets the same bytes for every cut', async () => {
    const { records, outputs } = await everySplit(SSE_BYTES, false);
    const expected = decoded(records[0]!);
    expect(expected.usage).toMatchObject({ ...SSE_USAGE, source: 'provider' });
    for (const [cut, record] of records.entries()) expect(decoded(record), `cut at ${cut}`).toEqual(expected);
    const first = outputs[0]!;
    expect(first).not.toContain('usage');
    expect(first).toContain('Grüße,');
    expect(first).toContain('🦊 fox');
    expect(first.endsWith('data: [DONE]\r\n\r\n')).toBe(true);
    // Only the usage was removed: every other line is as it came, CRLF and all.
    const without = decoder
      .decode(SSE_BYTES)
      .replace(/,"usage":null/g, '')
      .replace(/data: \{[^\r\n]*"choices":\[\],"usage":\{[^\r\n]*\r\n\r\n/, '');
    expect(first).toBe(without);
    for (const [cut, out] of outputs.entries()) expect(out, `caller bytes, cut at ${cut}`).toBe(first);
  });
});

describe('split over real sockets', () => {
  let sim: Simulator;
  let replay: ReplayServer;
  beforeAll(async () => {
    sim = await startSimulator();
    const routes: Record<string, { headers: Record<string, string>; pieces: Uint8Array[] }> = {};
    for (let cut = 1; cut < SSE_BYTES.length; cut += 41) {
      routes[`/${cut}/v1/chat/completions`] = { headers: SSE_HEADERS, pieces: splitAt(SSE_BYTES, [cut]) };
    }
    replay = await startReplay(routes);
  });
  afterAll(async () => {
    await replay.close();
    await sim.close();
  });

  it('the recorded stream from a server writing it in two pieces', async () => {
    const records: CallRecord[] = [];
    const meter = createMeter({ database: false, onRecord: (r) => records.push(r) });
    for (let cut = 1; cut < SSE_BYTES.length; cut += 41) {
      const res = await meter.fetch(`${replay.url}/${cut}/v1/chat/completions`, request(true));
      expect(decoder.decode(await bodyBytes(res))).toBe(decoder.decode(SSE_BYTES));
    }
    await meter.shutdown();
    for (const record of records)
      expect(record.usage).toEqual({
        ...SSE_USAGE,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
        source: 'provider',
      });
  });

  const cases = [
    { provider: 'openai', lineEnding: '\r\n' },
    { provider: 'openai', lineEnding: '\r' },
    { provider: 'anthropic', lineEnding: '\r\n' },
    { provider: 'anthropic', lineEnding: '\r' },
  ] as const;

  it.each(cases)('simulator one byte per write: $provider, line end $lineEnding', async (c) => {
    const records: CallRecord[] = [];
    const meter = createMeter({ database: false, onRecord: (r) => records.push(r) });
    const behavior = { chunking: 'byte', lineEnding: c.lineEnding, outputTokens: 6, fault: 'garbage' };
    const res =
      c.provider === 'openai'
        ? await meter.fetch(`${sim.url}/v1/chat/completions`, {
            ...request(false),
            headers: { 'content-type': 'application/json', 'x-sim-options': JSON.stringify(behavior) },
          })
        : await meter.fetch(`${sim.url}/v1/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-sim-options': JSON.stringify(behavior) },
            body: JSON.stringify({
              model: 'claude-sonnet-4-5',
              max_tokens: 50,
              stream: true,
              messages: [{ role: 'user', content: 'hi' }],
            }),
          });
    await res.arrayBuffer();
    await meter.shutdown();
    const truth = sim.calls.at(-1)!;
    expect(records[0]?.usage).toEqual({
      inputTokens: truth.inputTokens,
      outputTokens: truth.outputTokens,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      source: 'provider',
    });
    expect(records[0]?.outcome).toBe('ok');
  });
});
