import { refusalResponse } from '../fetch/refuse.js';
import { positiveNumber } from '../options.js';
import { guardMarker } from '../providers/refusal.js';
import { callFacts, type FetchInput, type FetchLike, signalOf } from './call.js';
import { classifyError, classifyStatus } from './classify.js';
import { CircuitOpenError, isCircuitOpenError } from './errors.js';
import type {
  CircuitBreakerOptions,
  CircuitChange,
  CircuitFetchOptions,
  CircuitSnapshot,
  CircuitState,
} from './types.js';

/** One call let through; report how it went exactly once. */
export interface CircuitPermit {
  success(): void;
  failure(): void;
  /** The call ended without telling anything about the provider (the caller cancelled). */
  release(): void;
}

export interface CircuitBreaker {
  /** Throws CircuitOpenError while the circuit for `key` is open (or its probes are taken). */
  acquire(key: string): CircuitPermit;
  state(key: string): CircuitState;
  snapshot(): Record<string, CircuitSnapshot>;
  /** Run `fn` under the breaker; a throw counts as a failure unless `isFailure` says otherwise. */
  run<T>(key: string, fn: () => Promise<T>, isFailure?: (error: unknown) => boolean): Promise<T>;
}

interface Circuit {
  state: CircuitState;
  /** Times of failures within the window, oldest first. */
  failures: number[];
  openedAt: number;
  probes: number;
}

/**
 * A circuit breaker per key (provider and model): closed until `failureThreshold` failures fall
 * within `windowMs`, then open (every call fails fast) for `openMs`, then half-open: a probe goes
 * through; its success closes the circuit, its failure opens it again. Under sustained failures,
 * retries only add load to an overloaded provider: fail fast instead of queueing behind it.
 */
export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const threshold = positiveNumber('failureThreshold', options.failureThreshold, 5);
  const windowMs = positiveNumber('windowMs', options.windowMs, 60_000);
  const openMs = positiveNumber('openMs', options.openMs, 30_000);
  const maxProbes = positiveNumber('halfOpenProbes', options.halfOpenProbes, 1);
  const now = options.now ?? (() => performance.now());
  const circuits = new Map<string, Circuit>();

  function circuit(key: string): Circuit {
    let c = circuits.get(key);
    if (!c) {
      c = { state: 'closed', failures: [], openedAt: 0, probes: 0 };
      circuits.set(key, c);
    }
    return c;
  }

  function prune(c: Circuit, at: number): void {
    while (c.failures.length > 0 && c.failures[0]! <= at - windowMs) c.failures.shift();
  }

  function move(key: string, c: Circuit, to: CircuitState): void {
    if (c.state === to) return;
    const change: CircuitChange = { key, from: c.state, to, failures: c.failures.length };
    c.state = to;
    if (options.onStateChange) {
      try {
        options.onStateChange(change);
      } catch {
        // Observers never change the outcome.
      }
    }
  }

  /** An open circuit whose time is up turns half-open when someone looks. */
  function current(key: string, c: Circuit, at: number): CircuitState {
    if (c.state === 'open' && at - c.openedAt >= openMs) {
      c.probes = 0;
      move(key, c, 'half_open');
    }
    return c.state;
  }

  function acquire(key: string): CircuitPermit {
    const c = circuit(key);
    const at = now();
    const state = current(key, c, at);
    if (state === 'open') throw new CircuitOpenError(key, c.openedAt + openMs - at);
    const probe = state === 'half_open';
    if (probe) {
      if (c.probes >= maxProbes) throw new CircuitOpenError(key, 0);
      c.probes++;
    }
    let settled = false;
    const settle = (how: 'success' | 'failure' | 'release') => {
      if (settled) return;
      settled = true;
      const t = now();
      if (probe) c.probes = Math.max(0, c.probes - 1);
      if (how === 'release') return;
      if (how === 'success') {
        if (c.state === 'half_open') {
          c.failures = [];
          move(key, c, 'closed');
        }
        return;
      }
      c.failures.push(t);
      prune(c, t);
      if (c.state === 'half_open' || (c.state === 'closed' && c.failures.length >= threshold)) {
        c.openedAt = t;
        move(key, c, 'open');
      }
    };
    return {
      success: () => settle('success'),
      failure: () => settle('failure'),
      release: () => settle('release'),
    };
  }

  return {
    acquire,
    state(key) {
      const c = circuits.get(key);
      return c ? current(key, c, now()) : 'closed';
    },
    snapshot() {
      const at = now();
      const out: Record<string, CircuitSnapshot> = {};
      for (const [key, c] of circuits) {
        const state = current(key, c, at);
        prune(c, at);
        out[key] = {
          state,
          failures: c.failures.length,
          retryAfterMs: state === 'open' ? Math.max(0, c.openedAt + openMs - at) : 0,
        };
      }
      return out;
    },
    async run(key, fn, isFailure = () => true) {
      const permit = acquire(key);
      try {
        const value = await fn();
        permit.success();
        return value;
      } catch (error) {
        if (isFailure(error)) permit.failure();
        else permit.release();
        throw error;
      }
    },
  };
}

/**
 * A failure of the provider, not of the request: 408, 429 (not a budget refusal), 5xx and 529,
 * timeouts and network errors. A 400 says the provider is up.
 */
function failed(status: number, headers: Headers): boolean {
  const v = classifyStatus(status, headers, Date.now());
  return v.retry || v.cause === 'timeout';
}

/** Put a fetch behind a circuit breaker keyed by provider and model. */
export function withCircuitBreaker(
  fetch: FetchLike,
  breaker: CircuitBreaker,
  options: CircuitFetchOptions = {},
): FetchLike {
  const keyOf =
    options.keyOf ??
    ((input: FetchInput, init: RequestInit | undefined) => {
      const facts = callFacts(input, init);
      return facts ? `${facts.provider}/${facts.model ?? 'unknown'}` : null;
    });
  return async function circuitFetch(input, init) {
    const key = keyOf(input, init);
    if (key === null) return fetch(input, init);
    let permit: CircuitPermit;
    try {
      permit = breaker.acquire(key);
    } catch (error) {
      const facts = options.onOpen === 'respond' && isCircuitOpenError(error) ? callFacts(input, init) : null;
      if (!facts) throw error;
      return refusalResponse(facts.adapter, {
        kind: 'guard',
        marker: guardMarker('circuit_breaker'),
        status: 503,
        type: 'circuit_open',
        message: (error as CircuitOpenError).message,
        retryAfterMs: (error as CircuitOpenError).retryAfterMs,
      });
    }
    try {
      const response = await fetch(input, init);
      if (failed(response.status, response.headers)) permit.failure();
      else permit.success();
      return response;
    } catch (error) {
      const verdict = classifyError(error, signalOf(input, init), Date.now());
      if (verdict.cause === 'aborted') permit.release();
      else if (verdict.retry) permit.failure();
      else permit.release();
      throw error;
    }
  };
}
