import { afterEach, expect } from 'vitest';
import { type CallRecord, createMeter, type MeterOptions } from '../../src/index.js';
import type { Behavior, SimCall, SimOptions, Simulator } from '../../src/sim/index.js';
import { createTestTelemetry } from './otel.js';
import { useSimulator } from './simulator.js';

/** Nano-dollars per token for a USD-per-1M price. */
export const nanos = (usdPerMillion: number): number => usdPerMillion * 1000;

export interface Price {
  input: number;
  output: number;
  cachedInput?: number;
  cacheWrite?: number;
}

/**
 * The cost DESIGN.md defines, from a USD-per-1M price and a record's usage: uncached input, cache
 * reads and writes, and output (reasoning included), each rounded to whole nano-dollars.
 */
export function expectedCostNanos(price: Price, usage: NonNullable<CallRecord['usage']>): number {
  const uncached = usage.inputTokens - usage.cacheReadTokens - usage.cacheWriteTokens;
  return (
    Math.round(uncached * nanos(price.input)) +
    Math.round(usage.cacheReadTokens * nanos(price.cachedInput ?? price.input)) +
    Math.round(usage.cacheWriteTokens * nanos(price.cacheWrite ?? price.input)) +
    Math.round(usage.outputTokens * nanos(price.output))
  );
}

/** A meter with in-memory telemetry and a record capture. */
export function createProbe(options: MeterOptions = {}) {
  const tel = createTestTelemetry();
  const records: CallRecord[] = [];
  const meter = createMeter({
    database: false,
    tracerProvider: tel.tracerProvider,
    meterProvider: tel.meterProvider,
    ...options,
    onRecord: (record) => records.push(record),
  });
  return {
    meter,
    tel,
    records,
    /** The one record, once everything in flight is assembled. */
    async record(): Promise<CallRecord> {
      await meter.flush();
      expect(records, 'exactly one record').toHaveLength(1);
      return records[0]!;
    },
    async close() {
      await meter.shutdown();
      await tel.shutdown();
    },
  };
}

export type Probe = ReturnType<typeof createProbe>;

/**
 * The file's simulator (`useSimulator`) and a probe per test with the file's meter options
 * (`defaults`), closed when the test ends.
 */
export function useProbe(defaults: MeterOptions = {}, simOptions: SimOptions = {}) {
  const file = useSimulator(simOptions);
  let current: Probe | undefined;
  afterEach(() => {
    current = undefined;
  });
  const setup = (options: MeterOptions = {}): Probe => {
    current = file.closeAfterTest(createProbe({ ...defaults, ...options }));
    return current;
  };
  return {
    get sim(): Simulator {
      return file.sim;
    },
    /** This test's probe: the last one `setup` made. */
    get probe(): Probe {
      if (!current) throw new Error('no probe in this test: call setup() first');
      return current;
    },
    /** A probe for this test, with `options` over the file's. */
    setup,
    /**
     * The same call made without and then with the meter, the simulator behaving the same both
     * times, and `expectSame(plain, metered)`: the metered result, its record and the
     * simulator's truth for it.
     */
    async both<T>(
      behavior: Partial<Behavior>,
      run: (fetch: typeof globalThis.fetch | undefined) => Promise<T>,
      expectSame: (plain: T, result: T) => void = expectSameResult,
    ): Promise<{ result: T; record: CallRecord; truth: SimCall }> {
      const probe = setup();
      file.sim.enqueue(behavior, behavior);
      const plain = await run(undefined);
      const result = await run(probe.meter.fetch);
      const record = await probe.record();
      expectSame(plain, result);
      return { result, record, truth: file.sim.calls[1]! };
    },
  };
}

/** A client's result is the same with the meter as without, ids and times aside. */
export function expectSameResult(plain: unknown, result: unknown): void {
  expect(stable(result), 'the client sees the same result').toEqual(stable(plain));
}

/** JSON POST init with the simulator's behaviour header. */
export function post(body: unknown, behavior: Partial<Behavior> = {}, headers: Record<string, string> = {}) {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sim-options': JSON.stringify(behavior), ...headers },
    body: JSON.stringify(body),
  } satisfies RequestInit;
}

/** Reads until `done(text)` holds, then cancels the body: the caller going away mid-stream. */
export async function readThenCancel(response: Response, done: (text: string) => boolean): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!done(text)) {
    const { done: ended, value } = await reader.read();
    if (ended) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

/** Every item a client's stream yields, read to its end. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/**
 * A fetch that sends any URL to the simulator, keeping path and query: lets a test address the
 * real hosts (api.groq.com, *.openai.azure.com, *-aiplatform.googleapis.com) that host-based
 * detection keys on, while the wrapper sees the original URL.
 */
export function toSimulator(
  sim: Simulator,
): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  return (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    return fetch(sim.url + url.pathname + url.search, init);
  };
}

/**
 * Output tokens the caller received, checked against the simulator's truth for a call the caller
 * cut short: at least what it read, never more than was sent.
 */
export function expectCancelledUsage(record: CallRecord, truth: SimCall, received: number): void {
  expect(truth.clientClosed, 'the simulator saw the client close').toBe(true);
  expect(record.outcome).toBe('cancelled');
  expect(record.errorType).toBeNull();
  expect(record.usage?.inputTokens, 'input tokens').toBe(truth.inputTokens);
  expect(record.usage?.outputTokens, 'output read is counted').toBeGreaterThanOrEqual(received);
  expect(record.usage?.outputTokens, 'never more than was sent').toBeLessThanOrEqual(truth.outputTokens);
}

/** Every string in spans (names, attributes, events), records and metrics, for secret checks. */
export async function everythingExported(probe: Probe): Promise<string> {
  const spans = probe.tel.spans().map((s) => ({
    name: s.name,
    attributes: s.attributes,
    events: s.events,
    resource: s.resource.attributes,
  }));
  const metrics = await probe.tel.metrics();
  return JSON.stringify({ spans, records: probe.records, metrics });
}

const RANDOM_ID = /^(?:chatcmpl-|resp_|msg_|fc_|call_|toolu_|req_|emb-|cmpl-|rs_)?[0-9a-f]{16,}$/;
const VOLATILE = new Set([
  'created',
  'created_at',
  'createTime',
  'sdkHttpResponse',
  '_request_id',
  'timestamp',
]);

/**
 * A client result with what differs from call to call on the simulator taken out (ids, creation
 * times, HTTP response headers), so a metered and an unmetered result can be compared whole.
 */
export function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (typeof value === 'string') return RANDOM_ID.test(value) ? '<id>' : value;
  if (value instanceof Date) return '<date>';
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (VOLATILE.has(key) || typeof item === 'function') continue;
    out[key] = key === 'id' || key === 'responseId' ? '<id>' : stable(item);
  }
  return out;
}

/** The record's tokens are the simulator's, as the provider reported them, and its cost is price × tokens. */
export function expectTruth(record: CallRecord, truth: SimCall, price: Price): void {
  expect(record.usage, 'usage').toEqual({
    inputTokens: truth.inputTokens,
    outputTokens: truth.outputTokens,
    cacheReadTokens: truth.cacheReadTokens,
    cacheWriteTokens: truth.cacheWriteTokens,
    reasoningTokens: truth.reasoningTokens,
    source: 'provider',
  });
  expect(record.cost.totalNanos, 'cost').toBe(expectedCostNanos(price, record.usage!));
  expect(record.outcome).toBe('ok');
}
