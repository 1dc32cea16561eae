import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import {
  type CircuitChange,
  CircuitOpenError,
  createCircuitBreaker,
  isCircuitOpenError,
  withCircuitBreaker,
} from '../../src/resilience/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { caught, chatMessages, TEST_PRICES } from '../helpers/harness.js';

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('circuit breaker states (injected clock)', () => {
  it('closed → open after N failures in the window → half-open probe → closed or open again', () => {
    const c = clock();
    const changes: string[] = [];
    const breaker = createCircuitBreaker({
      failureThreshold: 3,
      windowMs: 1_000,
      openMs: 500,
      now: c.now,
      onStateChange: (e: CircuitChange) => changes.push(`${e.key}: ${e.from} → ${e.to}`),
    });
    const key = 'openai/gpt-4o-mini';
    for (let i = 0; i < 3; i++) breaker.acquire(key).failure();
    expect(breaker.state(key)).toBe('open');
    const error = (() => {
      try {
        breaker.acquire(key);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(isCircuitOpenError(error)).toBe(true);
    expect((error as CircuitOpenError).retryAfterMs).toBe(500);
    expect((error as Error).message).toMatch(/^Circuit open for openai\/gpt-4o-mini/);

    c.advance(500);
    expect(breaker.state(key)).toBe('half_open');
    const probe = breaker.acquire(key);
    expect(() => breaker.acquire(key), 'one probe at a time').toThrow(CircuitOpenError);
    probe.failure();
    expect(breaker.state(key), 'a failed probe opens it again').toBe('open');
    c.advance(500);
    breaker.acquire(key).success();
    expect(breaker.state(key)).toBe('closed');
    expect(changes).toEqual([
      `${key}: closed → open`,
      `${key}: open → half_open`,
      `${key}: half_open → open`,
      `${key}: open → half_open`,
      `${key}: half_open → closed`,
    ]);
  });

  it('failures outside the window do not add up; successes do not hide failures inside it', () => {
    const c = clock();
    const breaker = createCircuitBreaker({ failureThreshold: 3, windowMs: 1_000, now: c.now });
    breaker.acquire('k').failure();
    breaker.acquire('k').failure();
    c.advance(1_000);
    breaker.acquire('k').failure();
    breaker.acquire('k').success();
    expect(breaker.snapshot().k).toEqual({ state: 'closed', failures: 1, retryAfterMs: 0 });
    breaker.acquire('k').failure();
    breaker.acquire('k').failure();
    expect(breaker.snapshot().k).toMatchObject({ state: 'open', failures: 3 });
  });

  it('a released permit (the caller cancelled) says nothing about the provider', () => {
    const c = clock();
    const breaker = createCircuitBreaker({ failureThreshold: 1, openMs: 10, now: c.now });
    breaker.acquire('k').failure();
    c.advance(10);
    breaker.acquire('k').release();
    expect(breaker.state('k')).toBe('half_open');
    breaker.acquire('k').success();
    expect(breaker.state('k')).toBe('closed');
  });

  it('checks its options', () => {
    expect(() => createCircuitBreaker({ failureThreshold: 0 })).toThrow(
      'Expected `failureThreshold` to be a positive number.',
    );
  });
});

describe('withCircuitBreaker with the simulator and the meter', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });

  it('fails fast per provider and model once open; the open answer is a provider-shaped 503, recorded', async () => {
    sim.reset();
    const records: CallRecord[] = [];
    const meter = createMeter({ database: false, prices: TEST_PRICES, onRecord: (r) => records.push(r) });
    const c = clock();
    const breaker = createCircuitBreaker({ failureThreshold: 2, openMs: 1_000, now: c.now });
    const fetch = meter.wrapFetch(withCircuitBreaker(globalThis.fetch, breaker, { onOpen: 'respond' }));
    const openai = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', fetch, maxRetries: 0 });
    sim.enqueue({ fault: 'server_error' }, { fault: 'overloaded' });
    for (let i = 0; i < 2; i++) {
      await caught(() => openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }));
    }
    const error = await caught(() =>
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages }),
    );
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(503);
    expect((error as Error).message).toMatch(/Circuit open for openai_compatible\/gpt-4o-mini/);
    expect(sim.calls, 'the third call never left').toHaveLength(2);
    // Another model has its own circuit.
    await openai.chat.completions.create({ model: 'gpt-4o', messages: chatMessages });
    expect(sim.calls).toHaveLength(3);
    await meter.flush();
    expect(records.map((r) => [r.httpStatus, r.errorType, r.errorCode])).toEqual([
      [500, 'server_error', 'server_error'],
      [503, 'overloaded', 'server_error'],
      [503, 'overloaded', 'circuit_open'],
      [200, null, null],
    ]);
    // After openMs a probe goes through and closes it.
    c.advance(1_000);
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });
    expect(breaker.state('openai_compatible/gpt-4o-mini')).toBe('closed');
    await meter.shutdown();
  });

  it('throw mode: a CircuitOpenError', async () => {
    const breaker = createCircuitBreaker({ failureThreshold: 1 });
    breaker.acquire('openai/gpt-4o').failure();
    const fetch = withCircuitBreaker(globalThis.fetch, breaker);
    const error = await caught(() =>
      fetch('https://api.openai.com/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify({ model: 'gpt-4o', messages: chatMessages }),
      }),
    );
    expect(error).toBeInstanceOf(CircuitOpenError);
  });
});
