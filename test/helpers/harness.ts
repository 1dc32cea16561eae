import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { type CallRecord, createMeter, type MeterOptions } from '../../src/index.js';
import type { SimOptions, Simulator } from '../../src/sim/index.js';
import { createTestTelemetry } from './otel.js';
import { useSimulator } from './simulator.js';

/** USD per 1M tokens, for models the tests call. */
export const TEST_PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'claude-sonnet-4-5': { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
};

/** Nano-dollars per token for a USD-per-1M price. */
export const nanosPerToken = (usdPerMillion: number): number => usdPerMillion * 1000;

/**
 * A meter with an in-memory span exporter and a record capture, plus the official SDK clients
 * pointed at the simulator through `meter.fetch` (no SDK retries, so one call is one request).
 */
export function createHarness(sim: Simulator, options: MeterOptions = {}) {
  const tel = createTestTelemetry();
  const records: CallRecord[] = [];
  const onRecord = options.onRecord;
  const meter = createMeter({
    database: false,
    prices: TEST_PRICES,
    tracerProvider: tel.tracerProvider,
    meterProvider: tel.meterProvider,
    ...options,
    onRecord: (record) => {
      records.push(record);
      onRecord?.(record);
    },
  });
  const openai = new OpenAI({
    baseURL: `${sim.url}/v1`,
    apiKey: 'sk-test-openai-key',
    fetch: meter.fetch,
    maxRetries: 0,
  });
  const anthropic = new Anthropic({
    baseURL: sim.url,
    apiKey: 'sk-ant-test-key',
    fetch: meter.fetch,
    maxRetries: 0,
  });
  return {
    meter,
    tel,
    records,
    openai,
    anthropic,
    /** The one record, after everything in flight is assembled. */
    async record(): Promise<CallRecord> {
      await meter.flush();
      if (records.length !== 1) throw new Error(`expected one record, got ${records.length}`);
      const { inFlight } = meter.stats();
      if (inFlight !== 0) throw new Error(`expected no call in flight, got ${inFlight}`);
      return records[0]!;
    },
    async close() {
      await meter.shutdown();
      await tel.shutdown();
    },
  };
}

export type Harness = ReturnType<typeof createHarness>;

/** The file's simulator (`useSimulator`), and harnesses on it that close when their test ends. */
export function useHarness(simOptions: SimOptions = {}) {
  const file = useSimulator(simOptions);
  return {
    get sim(): Simulator {
      return file.sim;
    },
    harness(options: MeterOptions = {}): Harness {
      return file.closeAfterTest(createHarness(file.sim, options));
    },
  };
}

/** Runs `fn` and returns what it threw (undefined when it did not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return error;
  }
}

export const chatMessages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Tell me about the quick brown fox.' },
];
