import { randomUUID } from 'node:crypto';
import { RETRY_ATTEMPT_TAG, RETRY_GROUP_TAG } from '../attribution.js';
import { retryTiming } from '../common/retry-timing.js';
import { atLeast, invalidOption, nonNegative } from '../options.js';
import { callFacts, type FetchInput } from './call.js';
import { classifyError, classifyStatus, isResponseLike, type Verdict } from './classify.js';
import { sleep as defaultSleep } from './sleep.js';
import type { RetryEvent, RetryPolicy } from './types.js';

interface Resolved {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxElapsedMs: number;
  maxRetryAfterMs: number;
  retryTimeouts: boolean;
  now: () => number;
  random: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  newId: () => string;
}

function resolve(policy: RetryPolicy): Resolved {
  const maxAttempts = atLeast('maxAttempts', policy.maxAttempts, 1, 3);
  if (!Number.isInteger(maxAttempts)) throw invalidOption('maxAttempts', 'an integer');
  return {
    maxAttempts,
    baseDelayMs: nonNegative('baseDelayMs', policy.baseDelayMs, 500),
    maxDelayMs: nonNegative('maxDelayMs', policy.maxDelayMs, 8_000),
    maxElapsedMs: nonNegative('maxElapsedMs', policy.maxElapsedMs, 60_000),
    maxRetryAfterMs: nonNegative('maxRetryAfterMs', policy.maxRetryAfterMs, 60_000),
    retryTimeouts: policy.retryTimeouts === true,
    now: policy.now ?? Date.now,
    random: policy.random ?? Math.random,
    sleep: policy.sleep ?? defaultSleep,
    newId: policy.newId ?? randomUUID,
  };
}

function abortSignalIn(value: unknown): AbortSignal | undefined {
  const signal = (value as { signal?: unknown } | null | undefined)?.signal;
  return signal && typeof (signal as AbortSignal).aborted === 'boolean' ? (signal as AbortSignal) : undefined;
}

function isRequest(value: unknown): value is Request {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Request).clone === 'function' &&
    typeof (value as Request).url === 'string' &&
    typeof (value as Request).method === 'string'
  );
}

function isStream(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && typeof (value as ReadableStream).getReader === 'function'
  );
}

/**
 * Arguments for each attempt. A `Request` is cloned per attempt (its body can be read once); a
 * streamed `init.body` cannot be sent twice, so such a call gets one attempt.
 */
function replayer<A extends unknown[]>(args: A): { replayable: boolean; next(): A } {
  const [first, second] = args;
  if (isStream((second as RequestInit | undefined)?.body)) return { replayable: false, next: () => args };
  if (isRequest(first)) {
    if (first.bodyUsed) return { replayable: false, next: () => args };
    return {
      replayable: true,
      next: () => [first.clone(), ...args.slice(1)] as unknown as A,
    };
  }
  return { replayable: true, next: () => args };
}

/**
 * The wait the call's adapter reads from a retryable error response when the standard headers
 * name none: a provider header (Azure's `x-rate-limit-reset-tokens`), or the body where the
 * provider says it only there (Gemini's RetryInfo.retryDelay), read from a clone. Null when the
 * call is not an LLM call llm-meter knows, or the response says nothing.
 */
async function adapterHint(response: Response, args: readonly unknown[]): Promise<number | null> {
  try {
    const facts = callFacts(args[0] as FetchInput, args[1] as RequestInit | undefined);
    if (!facts) return null;
    const fromHeaders = facts.adapter.readHeaders(response.headers).retryAfterMs;
    if (fromHeaders !== null) return fromHeaders;
    return facts.adapter.parseError(JSON.parse(await response.clone().text())).retryAfterMs ?? null;
  } catch {
    return null;
  }
}

/** Read an error response to its end, so its metered record is complete and the socket reusable. */
async function release(response: Response): Promise<void> {
  try {
    await response.arrayBuffer();
  } catch {
    // Nothing to release, or the connection is gone already.
  }
}

/**
 * Retry an async function (a fetch, an SDK call) without multiplying cost or hitting a limit or
 * an overloaded provider harder: only what is retryable (429, 408, 409, 5xx, 529, network
 * errors), never other 4xx or a blocking budget (`x-should-retry: false`), the server's
 * retry-after first, else exponential backoff with full jitter, a cap on attempts and on total
 * time, and a timeout that may have completed only with `retryTimeouts`. The last failure is
 * returned (a Response) or thrown as it was.
 *
 * Wrap a metered fetch (`withRetry(meter.fetch, { meter })`) so each attempt is its own record,
 * tagged `retry_group` (shared by the attempts of one call) and `retry_attempt` (1, 2, …), and
 * its span links to the previous attempt's span.
 */
export function withRetry<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  policy: RetryPolicy = {},
): (...args: A) => Promise<R> {
  const p = resolve(policy);
  const meter = policy.meter;
  return async function retrying(...args: A): Promise<R> {
    const signal = abortSignalIn(args[1]) ?? abortSignalIn(args[0]);
    const replay = replayer(args);
    const group = p.newId();
    const started = p.now();
    for (let attempt = 1; ; attempt++) {
      const callArgs = replay.next();
      const run = () => fn(...callArgs);
      let value: R | undefined;
      let error: unknown;
      let threw = false;
      try {
        value = await (meter
          ? meter.run({ [RETRY_GROUP_TAG]: group, [RETRY_ATTEMPT_TAG]: String(attempt) }, run)
          : run());
      } catch (e) {
        threw = true;
        error = e;
      }
      const now = p.now();
      let verdict: Verdict = threw
        ? classifyError(error, signal, now)
        : isResponseLike(value)
          ? classifyStatus(value.status, value.headers, now)
          : { retry: false, mayHaveCompleted: false, hintMs: null, status: null, cause: 'ok' };
      if (!threw && verdict.retry && verdict.hintMs === null && isResponseLike(value)) {
        const hintMs = await adapterHint(value, callArgs);
        if (hintMs !== null) verdict = { ...verdict, hintMs };
      }
      const finish = (): R => {
        if (threw) throw error;
        return value as R;
      };
      if (!verdict.retry || (verdict.mayHaveCompleted && !p.retryTimeouts)) return finish();
      if (attempt >= p.maxAttempts || !replay.replayable || signal?.aborted) return finish();
      const timing = retryTiming(
        {
          retry: attempt,
          hintMs: verdict.hintMs,
          maxRetryAfterMs: p.maxRetryAfterMs,
          elapsedMs: now - started,
          maxElapsedMs: p.maxElapsedMs,
          baseDelayMs: p.baseDelayMs,
          maxDelayMs: p.maxDelayMs,
        },
        p.random,
      );
      if (!timing.retry) return finish();
      if (!threw && isResponseLike(value)) await release(value);
      if (policy.onRetry) {
        const event: RetryEvent = {
          group,
          attempt,
          delayMs: timing.delayMs,
          delaySource: timing.source,
          status: verdict.status,
          cause: verdict.cause,
          error: threw ? error : undefined,
        };
        try {
          policy.onRetry(event);
        } catch {
          // A hook never changes the outcome.
        }
      }
      await p.sleep(timing.delayMs, signal);
    }
  };
}
