import { parseRetryAfter } from '../errors/retry-after.js';
import { isCircuitOpenError } from './errors.js';

/**
 * Whether one attempt's result may be retried, from what the wire says: the status, the
 * provider's `x-should-retry`, its retry-after hint, or the kind of thrown error.
 */
export interface Verdict {
  retry: boolean;
  /**
   * The provider may have done (and billed) the work: a timeout after the request was sent, a
   * 504. Retried only when the policy says so: a retry of work that completed is paid for twice.
   */
  mayHaveCompleted: boolean;
  /** The server's requested wait, in ms, when it gave one. */
  hintMs: number | null;
  status: number | null;
  cause: 'ok' | 'status' | 'network' | 'timeout' | 'aborted' | 'circuit_open' | 'not_retryable';
}

const OK: Verdict = { retry: false, mayHaveCompleted: false, hintMs: null, status: null, cause: 'ok' };

/**
 * 408 (the server gave up waiting for the request), 409 (lock contention), 429 and every 5xx but
 * 504 are retried, as the official SDKs do (openai-node `shouldRetry`). 529 is Anthropic's
 * "overloaded". 504 means a gateway gave up waiting for the provider, which may still finish and
 * bill the call: a timeout that may have completed.
 */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || (status >= 500 && status !== 504);
}

export function classifyStatus(status: number, headers: Headers | null, now: number): Verdict {
  if (status < 400) return { ...OK, status };
  const hintMs = headers
    ? parseRetryAfter(headers.get('retry-after-ms'), headers.get('retry-after'), now)
    : null;
  const should = headers?.get('x-should-retry') ?? null;
  // A blocking budget answers 429 with `x-should-retry: false`: waiting cannot make it fit.
  if (should === 'false' || headers?.get('x-llm-meter-budget') === 'exceeded') {
    return { retry: false, mayHaveCompleted: false, hintMs, status, cause: 'not_retryable' };
  }
  if (should === 'true') return { retry: true, mayHaveCompleted: false, hintMs, status, cause: 'status' };
  if (status === 504) return { retry: true, mayHaveCompleted: true, hintMs, status, cause: 'timeout' };
  if (retryableStatus(status))
    return { retry: true, mayHaveCompleted: false, hintMs, status, cause: 'status' };
  return { retry: false, mayHaveCompleted: false, hintMs, status, cause: 'not_retryable' };
}

/** Connection failures before the request could have been processed, or while it was in flight. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
/** Timeouts after the request was sent: the provider may be working on it. */
const SENT_TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function nameOf(e: unknown): string {
  const name = (e as { name?: unknown }).name;
  const ctor = (e as { constructor?: { name?: unknown } }).constructor?.name;
  // The official SDKs leave `name` as "Error" and rely on the class name.
  return typeof name === 'string' && name !== 'Error' ? name : typeof ctor === 'string' ? ctor : '';
}

function headersOf(value: unknown): Headers | null {
  if (!value || typeof value !== 'object') return null;
  if (typeof (value as Headers).get === 'function') return value as Headers;
  try {
    return new Headers(value as Record<string, string>);
  } catch {
    return null;
  }
}

/** A budget refusal raised by an SDK: its body says `budget_exceeded`. */
function budgetRefusal(error: object): boolean {
  const e = error as {
    error?: { type?: unknown; code?: unknown; error?: { type?: unknown } };
    code?: unknown;
  };
  return [e.code, e.error?.type, e.error?.code, e.error?.error?.type].includes('budget_exceeded');
}

function isTimeoutReason(reason: unknown): boolean {
  return (reason as { name?: unknown } | undefined)?.name === 'TimeoutError';
}

/** Classify a thrown error: the caller's abort, an SDK's APIError (has a status), a timeout, a network error. */
export function classifyError(error: unknown, signal: AbortSignal | undefined, now: number): Verdict {
  const none: Verdict = {
    retry: false,
    mayHaveCompleted: false,
    hintMs: null,
    status: null,
    cause: 'not_retryable',
  };
  if (signal?.aborted && !isTimeoutReason(signal.reason)) return { ...none, cause: 'aborted' };
  if (!error || typeof error !== 'object') return none;
  if (isCircuitOpenError(error)) return { ...none, cause: 'circuit_open' };
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400) {
    if (budgetRefusal(error)) return { ...none, status, cause: 'not_retryable' };
    return classifyStatus(status, headersOf((error as { headers?: unknown }).headers), now);
  }
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 6; depth++) {
    const name = nameOf(e);
    const code = (e as { code?: unknown }).code;
    if (name === 'APIUserAbortError') return { ...none, cause: 'aborted' };
    if (name === 'AbortError') return { ...none, cause: 'aborted' };
    if (name === 'TimeoutError' || name === 'APIConnectionTimeoutError') {
      return { retry: true, mayHaveCompleted: true, hintMs: null, status: null, cause: 'timeout' };
    }
    if (typeof code === 'string' && SENT_TIMEOUT_CODES.has(code)) {
      return { retry: true, mayHaveCompleted: true, hintMs: null, status: null, cause: 'timeout' };
    }
    if (typeof code === 'string' && NETWORK_CODES.has(code)) {
      return { retry: true, mayHaveCompleted: false, hintMs: null, status: null, cause: 'network' };
    }
    if (name === 'APIConnectionError') {
      return { retry: true, mayHaveCompleted: false, hintMs: null, status: null, cause: 'network' };
    }
    e = (e as { cause?: unknown }).cause;
  }
  // undici's fetch rejects any connection failure with `TypeError: fetch failed`.
  if (error instanceof TypeError && /fetch failed/i.test(error.message)) {
    return { retry: true, mayHaveCompleted: false, hintMs: null, status: null, cause: 'network' };
  }
  return none;
}

/** A fetch Response, from any copy of undici or the platform. */
export function isResponseLike(value: unknown): value is Response {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Response).status === 'number' &&
    typeof (value as Response).headers?.get === 'function' &&
    'body' in value
  );
}
