import { createHash } from 'node:crypto';
import { guardRefusalOf, refusalResponse } from '../fetch/refuse.js';
import { nonNegative, oneOf } from '../options.js';
import { apiKeyOf } from '../providers/credentials.js';
import { guardMarker } from '../providers/refusal.js';
import { estimateChatInput } from '../tokens/index.js';
import { type CallFacts, callFacts, type FetchInput, type FetchLike, signalOf } from './call.js';
import { readLimitFacts } from './limit-headers.js';
import type { RateLimiterOptions, RateLimiterSnapshot } from './types.js';

/** A call let through: report its response headers (or that it failed) exactly once. */
export interface RateLimitGrant {
  done(response: { status: number; headers: Headers } | null, facts: CallFacts | null): void;
}

export type RateLimitDecision =
  | { ok: true; grant: RateLimitGrant }
  | { ok: false; retryAfterMs: number | null; reason: 'queue_full' | 'wait_too_long' | 'timed_out' };

export interface RateLimiter {
  /**
   * Waits (queue mode) until the provider's remaining budget for `key` can take the call, or
   * refuses. `tokens`: what the call draws from the tokens budget, null when not tracked.
   */
  acquire(key: string, tokens: number | null, signal?: AbortSignal): Promise<RateLimitDecision>;
  /** Whether calls for `key` need a token estimate (the provider reports a token budget). */
  tracksTokens(key: string): boolean;
  snapshot(): Record<string, RateLimiterSnapshot>;
}

interface Waiter {
  tokens: number | null;
  deadline: number;
  resolve(decision: RateLimitDecision): void;
  cleanup(): void;
}

interface Bucket {
  /** null: not known yet (the first call goes alone); false: the provider sends no limits. */
  tracked: boolean | null;
  remainingRequests: number | null;
  limitRequests: number | null;
  resetRequestsAt: number | null;
  remainingTokens: number | null;
  limitTokens: number | null;
  resetTokensAt: number | null;
  blockedUntil: number;
  inFlight: number;
  queue: Waiter[];
  cancelTimer: (() => void) | null;
  timerAt: number;
  rateLimited: number;
  refused: number;
}

type Gate = { go: true } | { go: false; until: number | null; never?: boolean };

/**
 * A client-side rate limiter that spends the provider's own reported budget
 * (`x-ratelimit-remaining-*`, `anthropic-ratelimit-*`) instead of discovering the limit by
 * hitting it. Calls past the budget wait in one FIFO queue per key and are released only as the
 * budget allows when it resets, so a backlog never bursts into the limit the moment it lifts (a
 * rate-limit cascade: limit, queue, burst, limit again); calls that could not go in time are
 * refused early.
 *
 * Until the first response says whether the provider reports limits, calls go one at a time; a
 * provider that reports none is passed through untouched, except after a 429, whose retry-after
 * holds every call for that key.
 */
export function createRateLimiter(options: RateLimiterOptions = {}): RateLimiter {
  const mode = oneOf('mode', options.mode, ['queue', 'reject'], 'queue');
  const maxWaitMs = nonNegative('maxWaitMs', options.maxWaitMs, 30_000);
  const maxQueue = nonNegative('maxQueue', options.maxQueue, 1_000);
  const defaultRetryAfterMs = nonNegative('defaultRetryAfterMs', options.defaultRetryAfterMs, 1_000);
  const marginMs = nonNegative('marginMs', options.marginMs, 25);
  const now = options.now ?? (() => performance.now());
  const setTimer =
    options.setTimer ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    });
  const buckets = new Map<string, Bucket>();

  function bucket(key: string): Bucket {
    let b = buckets.get(key);
    if (!b) {
      b = {
        tracked: null,
        remainingRequests: null,
        limitRequests: null,
        resetRequestsAt: null,
        remainingTokens: null,
        limitTokens: null,
        resetTokensAt: null,
        blockedUntil: 0,
        inFlight: 0,
        queue: [],
        cancelTimer: null,
        timerAt: Number.POSITIVE_INFINITY,
        rateLimited: 0,
        refused: 0,
      };
      buckets.set(key, b);
    }
    return b;
  }

  /** A budget whose reset time has passed is whole again (OpenAI: "resets to its initial state"). */
  function refresh(b: Bucket, at: number): void {
    if (b.resetRequestsAt !== null && at >= b.resetRequestsAt) {
      b.remainingRequests = b.limitRequests;
      b.resetRequestsAt = null;
    }
    if (b.resetTokensAt !== null && at >= b.resetTokensAt) {
      b.remainingTokens = b.limitTokens;
      b.resetTokensAt = null;
    }
  }

  function gate(b: Bucket, tokens: number | null, at: number): Gate {
    if (at < b.blockedUntil) return { go: false, until: b.blockedUntil };
    if (b.tracked === false) return { go: true };
    refresh(b, at);
    // Nothing known (yet, or since a reset without a known limit): one call at a time learns it.
    if (b.tracked === null || b.remainingRequests === null) {
      return b.inFlight === 0 ? { go: true } : { go: false, until: b.resetRequestsAt };
    }
    if (b.remainingRequests < 1) {
      if (b.resetRequestsAt === null) return b.inFlight === 0 ? { go: true } : { go: false, until: null };
      return { go: false, until: b.resetRequestsAt };
    }
    if (tokens !== null && b.remainingTokens !== null && b.remainingTokens < tokens) {
      if (b.limitTokens !== null && tokens > b.limitTokens) return { go: false, until: null, never: true };
      if (b.resetTokensAt === null) return b.inFlight === 0 ? { go: true } : { go: false, until: null };
      return { go: false, until: b.resetTokensAt };
    }
    return { go: true };
  }

  function take(b: Bucket, tokens: number | null): void {
    b.inFlight++;
    if (b.remainingRequests !== null) b.remainingRequests--;
    if (tokens !== null && b.remainingTokens !== null) b.remainingTokens -= tokens;
  }

  function grantFor(b: Bucket): RateLimitGrant {
    let settled = false;
    return {
      done(response, facts) {
        if (settled) return;
        settled = true;
        b.inFlight = Math.max(0, b.inFlight - 1);
        if (response && facts) learn(b, response, facts);
        pump(b);
      },
    };
  }

  function learn(b: Bucket, response: { status: number; headers: Headers }, call: CallFacts): void {
    const at = now();
    let f: ReturnType<typeof readLimitFacts>;
    try {
      f = readLimitFacts(call.adapter, response.headers, Date.now());
    } catch {
      return;
    }
    if (f.present) {
      b.tracked = true;
      // Calls still in flight were sent after this one was counted (or may have been): spend them
      // from the reported figure, erring on the side of waiting.
      if (f.remainingRequests !== null) b.remainingRequests = Math.max(0, f.remainingRequests - b.inFlight);
      if (f.limitRequests !== null) b.limitRequests = f.limitRequests;
      if (f.resetRequestsMs !== null) b.resetRequestsAt = at + f.resetRequestsMs + marginMs;
      if (f.remainingTokens !== null) b.remainingTokens = Math.max(0, f.remainingTokens);
      if (f.limitTokens !== null) b.limitTokens = f.limitTokens;
      if (f.resetTokensMs !== null) b.resetTokensAt = at + f.resetTokensMs + marginMs;
    } else if (b.tracked === null) {
      b.tracked = false;
    }
    if (response.status === 429 && guardRefusalOf(response) === null) {
      b.rateLimited++;
      const wait = f.retryAfterMs ?? f.resetRequestsMs ?? defaultRetryAfterMs;
      b.blockedUntil = Math.max(b.blockedUntil, at + wait + marginMs);
      if (b.remainingRequests !== null) b.remainingRequests = 0;
    }
  }

  function schedule(b: Bucket, at: number, when: number): void {
    if (!Number.isFinite(when) || (b.cancelTimer && b.timerAt <= when)) return;
    b.cancelTimer?.();
    b.timerAt = when;
    b.cancelTimer = setTimer(
      () => {
        b.cancelTimer = null;
        b.timerAt = Number.POSITIVE_INFINITY;
        pump(b);
      },
      Math.max(0, when - at),
    );
  }

  function refuse(b: Bucket, w: Waiter, reason: 'timed_out', retryAfterMs: number | null): void {
    b.refused++;
    w.cleanup();
    w.resolve({ ok: false, retryAfterMs, reason });
  }

  /** Release waiters in order while the budget allows; wake up again when it next can. */
  function pump(b: Bucket): void {
    const at = now();
    while (b.queue.length > 0) {
      const w = b.queue[0]!;
      const g = gate(b, w.tokens, at);
      if (g.go) {
        b.queue.shift();
        take(b, w.tokens);
        w.cleanup();
        w.resolve({ ok: true, grant: grantFor(b) });
        continue;
      }
      if (at >= w.deadline || g.never) {
        b.queue.shift();
        refuse(b, w, 'timed_out', g.until === null ? null : g.until - at);
        continue;
      }
      schedule(b, at, Math.min(g.until ?? Number.POSITIVE_INFINITY, w.deadline));
      return;
    }
  }

  return {
    tracksTokens(key) {
      const b = buckets.get(key);
      return b !== undefined && (b.remainingTokens !== null || b.limitTokens !== null);
    },
    acquire(key, tokens, signal) {
      const b = bucket(key);
      const at = now();
      const g = b.queue.length === 0 ? gate(b, tokens, at) : null;
      if (g?.go) {
        take(b, tokens);
        return Promise.resolve({ ok: true, grant: grantFor(b) });
      }
      const wait = g && !g.go && g.until !== null ? g.until - at : null;
      if (g && !g.go && g.never) {
        b.refused++;
        return Promise.resolve({ ok: false, retryAfterMs: null, reason: 'wait_too_long' });
      }
      if (mode === 'reject' || (wait !== null && wait > maxWaitMs)) {
        b.refused++;
        return Promise.resolve({ ok: false, retryAfterMs: wait, reason: 'wait_too_long' });
      }
      if (b.queue.length >= maxQueue) {
        b.refused++;
        return Promise.resolve({ ok: false, retryAfterMs: wait, reason: 'queue_full' });
      }
      return new Promise<RateLimitDecision>((resolve, reject) => {
        const onAbort = () => {
          const i = b.queue.indexOf(w);
          if (i >= 0) b.queue.splice(i, 1);
          reject(signal!.reason);
          pump(b);
        };
        const w: Waiter = {
          tokens,
          deadline: at + maxWaitMs,
          resolve,
          cleanup: () => signal?.removeEventListener('abort', onAbort),
        };
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        b.queue.push(w);
        pump(b);
      });
    },
    snapshot() {
      const out: Record<string, RateLimiterSnapshot> = {};
      for (const [key, b] of buckets) {
        out[key] = {
          remainingRequests: b.remainingRequests,
          remainingTokens: b.remainingTokens,
          inFlight: b.inFlight,
          queued: b.queue.length,
          rateLimited: b.rateLimited,
          refused: b.refused,
        };
      }
      return out;
    },
  };
}

function credential(headers: Headers): string {
  const key = apiKeyOf(headers);
  // Only a short hash, in memory: the key itself is never kept.
  return key ? createHash('sha256').update(key.value).digest('hex').slice(0, 16) : 'anonymous';
}

async function defaultEstimate(facts: CallFacts): Promise<number> {
  const maxOut = facts.info.maxTokens ?? 0;
  if (!facts.body) return maxOut;
  const { tokens } = await estimateChatInput(facts.body, facts.model, facts.shape);
  return tokens + maxOut;
}

/**
 * Put a fetch behind a rate limiter. A refused call is answered with a 429 in the provider's
 * error shape (`x-should-retry: false`, `retry-after-ms` when known) without being sent.
 */
export function withRateLimiter(
  fetch: FetchLike,
  limiter: RateLimiter,
  options: RateLimiterOptions = {},
): FetchLike {
  const keyOf =
    options.keyOf ??
    ((input: FetchInput, init: RequestInit | undefined) => {
      const facts = callFacts(input, init);
      return facts ? `${facts.url.origin} ${credential(facts.headers)}` : '';
    });
  return async function limitedFetch(input, init) {
    const facts = callFacts(input, init);
    if (!facts) return fetch(input, init);
    const key = keyOf(input, init);
    let tokens: number | null = null;
    if (limiter.tracksTokens(key)) {
      try {
        tokens = options.estimateTokens
          ? await options.estimateTokens(input, init)
          : await defaultEstimate(facts);
      } catch {
        tokens = null;
      }
    }
    const decision = await limiter.acquire(key, tokens, signalOf(input, init));
    if (!decision.ok) {
      return refusalResponse(facts.adapter, {
        kind: 'guard',
        marker: guardMarker('rate_limiter'),
        status: 429,
        type: 'client_rate_limited',
        message:
          decision.reason === 'queue_full'
            ? 'Too many calls are waiting for the rate limit; this one was not sent.'
            : "The provider's remaining rate limit cannot take this call in time; it was not sent.",
        retryAfterMs: decision.retryAfterMs,
      });
    }
    let response: Response;
    try {
      response = await fetch(input, init);
    } catch (error) {
      decision.grant.done(null, facts);
      throw error;
    }
    decision.grant.done(response, facts);
    return response;
  };
}
