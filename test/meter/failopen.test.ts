import type { Context } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter, type MeterOptions } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import {
  BROKEN_BYTES,
  BROKEN_SPLITS,
  JSON_BYTES,
  JSON_HEADERS,
  JSON_SPLITS,
  JSON_USAGE,
  SSE_BYTES,
  SSE_HEADERS,
  SSE_SPLITS,
  SSE_USAGE,
} from '../fixtures/fetch-recordings.js';
import { splitAt } from '../helpers/bytes.js';
import { bodyBytes, type Recording, type ReplayServer, startReplay } from '../helpers/replay.js';

/**
 * Fail-open: whatever breaks inside the meter (a sink, a hook, an exporter, the parser on
 * garbage), the caller's response is byte-for-byte what a raw `fetch` returns, and behaves
 * like the original Response object.
 */

let sim: Simulator;
let replay: ReplayServer;
const meters: { shutdown(): Promise<void> }[] = [];

beforeAll(async () => {
  sim = await startSimulator();
  // Garbage streams recorded from the simulator once (comments, blank lines, an unknown event,
  // a data line that is not JSON, CRLF), replayed in fixed pieces so they are fixed bytes: one
  // as a caller asking for usage gets it, one as a caller who did not ask.
  const garbage = await recordGarbage(true);
  const garbagePlain = await recordGarbage(false);
  replay = await startReplay(
    {
      '/sse/v1/chat/completions': { headers: SSE_HEADERS, pieces: splitAt(SSE_BYTES, SSE_SPLITS) },
      '/json/v1/chat/completions': {
        statusText: 'Fine Thanks',
        headers: JSON_HEADERS,
        pieces: splitAt(JSON_BYTES, JSON_SPLITS),
      },
      '/broken/v1/chat/completions': {
        headers: { 'content-type': 'text/event-stream' },
        pieces: splitAt(BROKEN_BYTES, BROKEN_SPLITS),
      },
      '/garbage/v1/chat/completions': garbage,
      '/garbage-plain/v1/chat/completions': garbagePlain,
    },
    { '/moved/v1/chat/completions': '/sse/v1/chat/completions' },
  );
});
async function recordGarbage(includeUsage: boolean): Promise<Recording> {
  const res = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-sim-options': JSON.stringify({ fault: 'garbage', lineEnding: '\r\n', outputTokens: 9 }),
    },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    }),
  });
  const bytes = await bodyBytes(res);
  const offsets = Array.from({ length: Math.floor(bytes.length / 7) }, (_, i) => (i + 1) * 7 - (i % 5));
  return { headers: { 'content-type': 'text/event-stream; charset=utf-8' }, pieces: splitAt(bytes, offsets) };
}

afterAll(async () => {
  await replay.close();
  await sim.close();
});
afterEach(async () => {
  for (const m of meters.splice(0)) await m.shutdown();
});

/** The request a caller makes: an OpenAI chat call, streamed or not, asking for usage itself or not. */
function chatInit(stream: boolean, includeUsage = true): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-failopen-secret' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream,
      ...(stream && includeUsage ? { stream_options: { include_usage: true } } : {}),
    }),
  };
}

function meterWith(options: MeterOptions) {
  const meter = createMeter({ database: false, ...options });
  meters.push(meter);
  return meter;
}

class ThrowingProcessor implements SpanProcessor {
  constructor(private readonly where: 'onStart' | 'onEnd') {}
  onStart(_span: Span, _context: Context): void {
    if (this.where === 'onStart') throw new Error('processor onStart exploded');
  }
  onEnd(_span: ReadableSpan): void {
    if (this.where === 'onEnd') throw new Error('processor onEnd exploded');
  }
  forceFlush = async () => {};
  shutdown = async () => {};
}

const throwingExporter: SpanExporter = {
  export() {
    throw new Error('exporter exploded');
  },
  shutdown: async () => {},
};

const failingExporter: SpanExporter = {
  export(_spans, done) {
    setImmediate(() => done({ code: ExportResultCode.FAILED, error: new Error('collector down') }));
  },
  shutdown: async () => {},
};

interface Breakage {
  name: string;
  options: () => MeterOptions;
}

const records: CallRecord[] = [];

const BREAKAGES: Breakage[] = [
  { name: 'nothing broken', options: () => ({ onRecord: (r) => records.push(r) }) },
  {
    name: 'onRecord throws, and so does the logger',
    options: () => ({
      onRecord: () => {
        throw new Error('onRecord exploded');
      },
      logger: () => {
        throw new Error('logger exploded');
      },
    }),
  },
  {
    name: 'a span processor throws in onStart',
    options: () => ({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new ThrowingProcessor('onStart')] }),
    }),
  },
  {
    name: 'a span processor throws in onEnd',
    options: () => ({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new ThrowingProcessor('onEnd')] }),
    }),
  },
  {
    name: 'an exporter throws in export (simple processor)',
    options: () => ({
      tracerProvider: new BasicTracerProvider({
        spanProcessors: [new SimpleSpanProcessor(throwingExporter)],
      }),
    }),
  },
  {
    name: 'an exporter fails (batch processor, flushed)',
    options: () => ({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(failingExporter)] }),
    }),
  },
  {
    name: 'the tracer provider throws',
    options: () => ({
      tracerProvider: {
        getTracer() {
          throw new Error('no tracer');
        },
      },
    }),
  },
  {
    name: 'the meter provider throws',
    options: () => ({
      meterProvider: {
        getMeter() {
          throw new Error('no meter');
        },
      },
    }),
  },
];

const FIXTURES: { name: string; path: string; stream: boolean; includeUsage?: boolean }[] = [
  { name: 'recorded SSE (CRLF, split UTF-8, comments, non-JSON data)', path: '/sse', stream: true },
  { name: 'JSON body', path: '/json', stream: false },
  { name: 'broken SSE', path: '/broken', stream: true },
  {
    name: 'broken SSE through the usage-hiding rewriter',
    path: '/broken',
    stream: true,
    includeUsage: false,
  },
  { name: 'simulator garbage SSE', path: '/garbage', stream: true },
  {
    name: 'simulator garbage SSE through the usage-hiding rewriter',
    path: '/garbage-plain',
    stream: true,
    includeUsage: false,
  },
];

describe.each(BREAKAGES)('fail-open: $name', (breakage) => {
  it.each(FIXTURES)('$name: caller bytes identical to raw fetch', async (fixture) => {
    const meter = meterWith(breakage.options());
    const url = `${replay.url}${fixture.path}/v1/chat/completions`;
    const raw = await fetch(url, chatInit(fixture.stream, fixture.includeUsage));
    const metered = await meter.fetch(url, chatInit(fixture.stream, fixture.includeUsage));
    expect(metered.status).toBe(raw.status);
    const [rawBytes, meteredBytes] = await Promise.all([bodyBytes(raw), bodyBytes(metered)]);
    expect(meteredBytes.equals(rawBytes), 'byte-identical body').toBe(true);
    await expect(meter.flush(), 'flush never throws').resolves.toBeUndefined();
    expect(meter.stats().calls, 'the call was metered').toBe(1);
  });
});

describe('fail-open: what the meter still records', () => {
  it('a throwing onRecord does not stop the spans; sink errors are counted and logged', async () => {
    const exporter = new InMemorySpanExporter();
    const logged: string[] = [];
    const meter = meterWith({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
      onRecord: () => {
        throw new Error('onRecord exploded');
      },
      logger: (message) => logged.push(message),
    });
    const res = await meter.fetch(`${replay.url}/sse/v1/chat/completions`, chatInit(true));
    await res.arrayBuffer();
    await meter.flush();
    const span = exporter.getFinishedSpans().find((s) => s.kind === 2);
    expect(span?.attributes['gen_ai.usage.output_tokens']).toBe(SSE_USAGE.outputTokens);
    expect(meter.stats().sinkErrors).toBeGreaterThan(0);
    expect(logged.some((m) => m.includes('onRecord'))).toBe(true);
  });

  it('a throwing span processor does not stop the record', async () => {
    const got: CallRecord[] = [];
    const meter = meterWith({
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new ThrowingProcessor('onEnd')] }),
      onRecord: (r) => got.push(r),
    });
    const res = await meter.fetch(`${replay.url}/json/v1/chat/completions`, chatInit(false));
    await res.json();
    await meter.flush();
    expect(got[0]?.usage).toMatchObject({ ...JSON_USAGE, source: 'provider' });
  });

  it('the recorded SSE is decoded exactly: usage, ids, finish reason', async () => {
    records.length = 0;
    const meter = meterWith({ onRecord: (r) => records.push(r) });
    const res = await meter.fetch(`${replay.url}/sse/v1/chat/completions`, chatInit(true));
    await res.arrayBuffer();
    await meter.flush();
    expect(records[0]).toMatchObject({
      outcome: 'ok',
      responseId: 'chatcmpl-fixed0001',
      responseModel: 'gpt-4o-mini-2024-07-18',
      finishReasons: ['stop'],
      usage: { ...SSE_USAGE, source: 'provider' },
    });
  });

  it('garbage and broken streams are recorded, not thrown', async () => {
    records.length = 0;
    const meter = meterWith({ onRecord: (r) => records.push(r) });
    for (const path of ['/garbage', '/broken']) {
      const res = await meter.fetch(`${replay.url}${path}/v1/chat/completions`, chatInit(true));
      await res.arrayBuffer();
    }
    await meter.flush();
    // The simulator's garbage stream is well-formed under the noise: exact usage.
    expect(records[0]).toMatchObject({ outcome: 'ok', usage: { outputTokens: 9, source: 'provider' } });
    // The broken one never ends properly.
    expect(records[1]).toMatchObject({ outcome: 'error', errorType: 'stream_interrupted' });
    expect(records[1]!.usage?.source).toBe('estimated');
  });
});

describe('the Response behaves like the original', () => {
  const cases = [
    { name: 'SSE', path: '/sse', stream: true, includeUsage: true },
    { name: 'SSE through the rewriter', path: '/broken', stream: true, includeUsage: false },
    { name: 'JSON with a status text', path: '/json', stream: false, includeUsage: true },
    { name: 'SSE after a 307 redirect', path: '/moved', stream: true, includeUsage: true },
  ];

  it.each(cases)('$name: status, headers, url, redirected, type, bodyUsed, clone()', async (c) => {
    const meter = meterWith({});
    const url = `${replay.url}${c.path}/v1/chat/completions`;
    const raw = await fetch(url, chatInit(c.stream, c.includeUsage));
    const metered = await meter.fetch(url, chatInit(c.stream, c.includeUsage));
    expect(metered.status, 'status').toBe(raw.status);
    expect(metered.statusText, 'statusText').toBe(raw.statusText);
    expect(metered.ok, 'ok').toBe(raw.ok);
    expect(metered.url, 'url').toBe(raw.url);
    expect(metered.redirected, 'redirected').toBe(raw.redirected);
    expect(metered.type, 'type').toBe(raw.type);
    expect([...metered.headers], 'headers').toEqual([...raw.headers]);
    expect(metered.bodyUsed, 'bodyUsed before').toBe(false);
    expect(metered).toBeInstanceOf(Response);

    const rawClone = raw.clone();
    const clone = metered.clone();
    expect(clone.url, 'clone keeps url').toBe(raw.url);
    expect(clone.redirected, 'clone keeps redirected').toBe(raw.redirected);
    expect(clone.type, 'clone keeps type').toBe(raw.type);
    expect(clone.status).toBe(raw.status);
    const [a, b, rawA, rawB] = await Promise.all([
      bodyBytes(metered),
      bodyBytes(clone),
      bodyBytes(raw),
      bodyBytes(rawClone),
    ]);
    expect(rawA.equals(rawB)).toBe(true);
    expect(a.equals(rawA), 'original body identical').toBe(true);
    expect(b.equals(rawA), 'clone body identical').toBe(true);
    expect(metered.bodyUsed, 'bodyUsed after').toBe(true);
    expect(clone.bodyUsed, 'clone bodyUsed after').toBe(true);
  });

  // A whole JSON body is observed when a method reads it, without a second stream: every way
  // of reading gives the raw bytes and exactly one record with the provider's usage.
  const readers: [string, (res: Response) => Promise<unknown>][] = [
    ['json()', (res) => res.json()],
    ['text()', (res) => res.text()],
    ['arrayBuffer()', async (res) => Buffer.from(await res.arrayBuffer())],
    ['bytes()', async (res) => Buffer.from(await res.bytes())],
    [
      'blob()',
      async (res) => {
        const blob = await res.blob();
        return [blob.type, Buffer.from(await blob.arrayBuffer())];
      },
    ],
    ['body reader', (res) => bodyBytes(res)],
    ['body touched, then json()', async (res) => (res.body ? res.json() : null)],
    [
      'clone(), then json() on both',
      async (res) => {
        const copy = res.clone();
        return [await res.json(), await copy.json()];
      },
    ],
  ];
  it.each(readers)('JSON body read with %s: the raw result, one record with usage', async (_name, read) => {
    const got: CallRecord[] = [];
    const meter = meterWith({ onRecord: (r) => got.push(r) });
    const url = `${replay.url}/json/v1/chat/completions`;
    const raw = await fetch(url, chatInit(false));
    const metered = await meter.fetch(url, chatInit(false));
    expect(await read(metered)).toEqual(await read(raw));
    expect(metered.bodyUsed, 'bodyUsed after').toBe(raw.bodyUsed);
    await meter.flush();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ outcome: 'ok', usage: { ...JSON_USAGE, source: 'provider' } });
  });

  it('a JSON body: bodyUsed follows raw fetch through clone(), and a read body cannot be cloned', async () => {
    const got: CallRecord[] = [];
    const meter = meterWith({ onRecord: (r) => got.push(r) });
    const url = `${replay.url}/json/v1/chat/completions`;
    const views: (boolean | string)[][] = [];
    for (const res of [await fetch(url, chatInit(false)), await meter.fetch(url, chatInit(false))]) {
      const copy = res.clone();
      const view: (boolean | string)[] = [res.bodyUsed, copy.bodyUsed];
      await copy.text();
      view.push(res.bodyUsed, copy.bodyUsed);
      await res.json();
      view.push(res.bodyUsed);
      const cloneAfterRead = (() => {
        try {
          res.clone();
          return 'cloned';
        } catch (error) {
          return (error as Error).name;
        }
      })();
      view.push(cloneAfterRead);
      views.push(view);
    }
    expect(views[1], 'metered as raw').toEqual(views[0]);
    expect(views[0]).toEqual([false, false, false, true, true, 'TypeError']);
    await meter.flush();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ outcome: 'ok', usage: { ...JSON_USAGE, source: 'provider' } });
  });

  it('a JSON body read twice fails the second time as raw fetch does; one record', async () => {
    const got: CallRecord[] = [];
    const meter = meterWith({ onRecord: (r) => got.push(r) });
    const url = `${replay.url}/json/v1/chat/completions`;
    const raw = await fetch(url, chatInit(false));
    const metered = await meter.fetch(url, chatInit(false));
    await raw.json();
    await metered.json();
    const rawError = await raw.text().catch((e: unknown) => e);
    const meteredError = await metered.text().catch((e: unknown) => e);
    expect(rawError).toBeInstanceOf(TypeError);
    expect(meteredError).toBeInstanceOf(TypeError);
    expect((meteredError as Error).message).toBe((rawError as Error).message);
    await meter.flush();
    expect(got).toHaveLength(1);
    expect(got[0]!.outcome).toBe('ok');
  });

  it('text(), json() and the reader work as on the original', async () => {
    const meter = meterWith({});
    const url = `${replay.url}/json/v1/chat/completions`;
    const json = await (await meter.fetch(url, chatInit(false))).json();
    expect(json).toEqual(await (await fetch(url, chatInit(false))).json());
    const text = await (await meter.fetch(`${replay.url}/sse/v1/chat/completions`, chatInit(true))).text();
    expect(text).toBe(new TextDecoder().decode(SSE_BYTES));
  });
});
