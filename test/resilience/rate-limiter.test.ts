import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchLike } from '../../src/index.js';
import { createRateLimiter, withRateLimiter } from '../../src/resilience/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { chatMessages } from '../helpers/harness.js';

/**
 * A client-side rate limiter against the provider's reported budget, and a rate-limit cascade:
 * a naive client retries every 429 after its retry-after and bursts into the limit again each
 * time it lifts; the limiter spends the reported budget and never bursts.
 */

const URL_ = 'https://api.openai.com/v1/chat/completions';
const body = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages });

/** A fake clock and timers: `advance` runs what falls due. */
function fakeTime() {
  let now = 0;
  let timers: { at: number; fn: () => void }[] = [];
  return {
    now: () => now,
    setTimer(fn: () => void, ms: number) {
      const t = { at: now + ms, fn };
      timers.push(t);
      return () => {
        timers = timers.filter((x) => x !== t);
      };
    },
    async advance(ms: number) {
      now += ms;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.fn();
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** An upstream that reports a fixed budget: `remaining` left, whole again after `resetMs`. */
function reporting(state: { remaining: number; limit: number; resetMs: number }) {
  const sent: number[] = [];
  const fetch: FetchLike = async () => {
    sent.push(sent.length);
    state.remaining = Math.max(0, state.remaining - 1);
    return new Response('{}', {
      status: 200,
      headers: {
        'x-ratelimit-limit-requests': String(state.limit),
        'x-ratelimit-remaining-requests': String(state.remaining),
        'x-ratelimit-reset-requests': `${state.resetMs}ms`,
      },
    });
  };
  return { fetch, sent };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('rate limiter (fake clock)', () => {
  it('learns the budget from the first response, queues past it, releases exactly the budget at the reset', async () => {
    const time = fakeTime();
    const upstream = reporting({ remaining: 3, limit: 3, resetMs: 1000 });
    const limiter = createRateLimiter({ now: time.now, setTimer: time.setTimer, marginMs: 0 });
    const fetch = withRateLimiter(upstream.fetch, limiter);
    const results = Array.from({ length: 7 }, () => fetch(URL_, { method: 'POST', body }));
    await flush();
    // The first call goes alone (nothing known yet); its answer says 2 remain.
    for (let i = 0; i < 5; i++) await flush();
    expect(upstream.sent).toHaveLength(3);
    const snap = Object.values(limiter.snapshot())[0]!;
    expect(snap).toMatchObject({ remainingRequests: 0, queued: 4 });
    await time.advance(999);
    expect(upstream.sent, 'nothing before the reset').toHaveLength(3);
    await time.advance(1);
    for (let i = 0; i < 5; i++) await flush();
    expect(upstream.sent, 'the whole budget at the reset, not the whole queue').toHaveLength(6);
    await time.advance(1000);
    for (let i = 0; i < 5; i++) await flush();
    expect(upstream.sent).toHaveLength(7);
    expect((await Promise.all(results)).map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
  });

  it('reject mode and long waits refuse early, in the provider shape, without sending', async () => {
    const time = fakeTime();
    const upstream = reporting({ remaining: 1, limit: 1, resetMs: 60_000 });
    const limiter = createRateLimiter({
      mode: 'queue',
      maxWaitMs: 5_000,
      now: time.now,
      setTimer: time.setTimer,
    });
    const fetch = withRateLimiter(upstream.fetch, limiter);
    expect((await fetch(URL_, { method: 'POST', body })).status).toBe(200);
    const refused = await fetch(URL_, { method: 'POST', body });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-llm-meter-guard')).toBe('rate_limiter');
    expect(refused.headers.get('x-should-retry')).toBe('false');
    expect(Number(refused.headers.get('retry-after-ms'))).toBeGreaterThan(59_000);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('client_rate_limited');
    expect(upstream.sent).toHaveLength(1);
    expect(Object.values(limiter.snapshot())[0]).toMatchObject({ refused: 1 });
  });

  it('a 429 holds every call for its key until retry-after has passed', async () => {
    const time = fakeTime();
    let calls = 0;
    const upstream: FetchLike = async () => {
      calls++;
      return calls === 1
        ? new Response('{"error":{"code":"rate_limit_exceeded"}}', {
            status: 429,
            headers: { 'retry-after-ms': '400' },
          })
        : new Response('{}', { status: 200 });
    };
    const limiter = createRateLimiter({ now: time.now, setTimer: time.setTimer, marginMs: 0 });
    const fetch = withRateLimiter(upstream, limiter);
    expect((await fetch(URL_, { method: 'POST', body })).status).toBe(429);
    const next = fetch(URL_, { method: 'POST', body });
    await time.advance(399);
    expect(calls).toBe(1);
    await time.advance(1);
    expect((await next).status).toBe(200);
    expect(calls).toBe(2);
  });

  it('a provider that reports no limits is passed through after the first answer', async () => {
    let inFlight = 0;
    let most = 0;
    const upstream: FetchLike = async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await flush();
      inFlight--;
      return new Response('{}');
    };
    const fetch = withRateLimiter(upstream, createRateLimiter());
    await fetch(URL_, { method: 'POST', body });
    await Promise.all(Array.from({ length: 5 }, () => fetch(URL_, { method: 'POST', body })));
    expect(most).toBe(5);
  });
});

/**
 * The provider's side of a rate limit, in front of the simulator: `limit` requests per fixed
 * window; a request over it gets the simulator's own 429 (`x-sim-options` fault `rate_limit`,
 * retry-after = until the window ends); answers report the window's remaining budget.
 */
function windowedProvider(limit: number, windowMs: number): FetchLike {
  let start = performance.now();
  let used = 0;
  return async (input, init) => {
    const t = performance.now();
    if (t - start >= windowMs) {
      start += Math.floor((t - start) / windowMs) * windowMs;
      used = 0;
    }
    const resetMs = Math.ceil(start + windowMs - t);
    const headers = new Headers(init?.headers);
    if (used >= limit) {
      headers.set('x-sim-options', JSON.stringify({ fault: 'rate_limit', retryAfterS: resetMs / 1000 }));
      return fetch(input, { ...init, headers });
    }
    used++;
    const remaining = limit - used;
    const res = await fetch(input, init);
    const out = new Headers(res.headers);
    out.set('x-ratelimit-limit-requests', String(limit));
    out.set('x-ratelimit-remaining-requests', String(remaining));
    out.set('x-ratelimit-reset-requests', `${resetMs}ms`);
    return new Response(res.body, { status: res.status, headers: out });
  };
}

describe('rate-limit cascade against the simulator', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });

  const REQUESTS = 24;
  const LIMIT = 4;
  const WINDOW_MS = 150;

  const request = (fetch: FetchLike) =>
    fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
      body,
    });

  it('a naive client bursts into the limit each time it lifts; the limiter does not', async () => {
    // The naive retry loop: on 429, sleep retry-after and try again.
    sim.reset();
    const naiveProvider = windowedProvider(LIMIT, WINDOW_MS);
    const naive = async () => {
      for (;;) {
        const res = await request(naiveProvider);
        await res.arrayBuffer();
        if (res.status !== 429) return res.status;
        await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after-ms'))));
      }
    };
    const naiveStatuses = await Promise.all(Array.from({ length: REQUESTS }, naive));
    const naive429 = sim.calls.filter((c) => c.status === 429).length;
    expect(naiveStatuses.every((s) => s === 200)).toBe(true);

    sim.reset();
    const limited = withRateLimiter(
      windowedProvider(LIMIT, WINDOW_MS),
      createRateLimiter({ maxWaitMs: 10_000 }),
    );
    const limitedStatuses = await Promise.all(
      Array.from({ length: REQUESTS }, async () => {
        const res = await request(limited);
        await res.arrayBuffer();
        return res.status;
      }),
    );
    const limited429 = sim.calls.filter((c) => c.status === 429).length;
    console.log(
      `rate-limit cascade, ${REQUESTS} calls, ${LIMIT} per ${WINDOW_MS} ms: ` +
        `429s naive=${naive429}, with limiter=${limited429}`,
    );
    expect(
      limitedStatuses.every((s) => s === 200),
      'every limited call succeeded, none refused',
    ).toBe(true);
    expect(naive429, 'the naive client cascades').toBeGreaterThanOrEqual(REQUESTS);
    expect(limited429, 'the limiter never bursts into the limit').toBeLessThanOrEqual(1);
  });
});
