import type { ErrorType } from '../record.js';

/**
 * The one mapping from what went wrong to an `error.type` and whether retrying can help.
 * Inputs are wire-format-neutral: adapters extract `code`/`type`/`message` from the body.
 */
interface ErrorFacts {
  status: number | null;
  code?: string | null;
  type?: string | null;
  message?: string | null;
}

interface Classified {
  errorType: ErrorType;
  retryable: boolean;
}

const RETRYABLE: Record<ErrorType, boolean> = {
  rate_limited: true,
  overloaded: true,
  server_error: true,
  invalid_request: false,
  context_length_exceeded: false,
  auth: false,
  not_found: false,
  content_filter: false,
  timeout: true,
  network: true,
  stream_interrupted: true,
  budget_exceeded: false,
};

/**
 * A provider's error code as llm-meter keeps it (record, span, database): an identifier such as
 * `rate_limit_exceeded`, `overloaded_error`, `RESOURCE_EXHAUSTED`, `ServiceUnavailableException`
 * or `429`, or null. Anything else (free text, a path, a value a proxy echoed back) is dropped
 * rather than stored, and so is anything shaped like a credential: a run of 32 or more
 * characters between separators (32-hex Azure keys, 39-character Gemini keys, the random part
 * of `sk-…` keys), or of 16 or more that mixes letters and digits (random tokens do; codes,
 * CamelCase or snake_case words, do not).
 */
const ERROR_CODE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

function looksRandom(segment: string): boolean {
  if (segment.length >= 32) return true;
  return segment.length >= 16 && /\d/.test(segment) && /[A-Za-z]/.test(segment);
}

export function safeErrorCode(value: string | null | undefined): string | null {
  if (typeof value !== 'string' || !ERROR_CODE.test(value)) return null;
  for (const segment of value.split(/[_.:-]/)) if (looksRandom(segment)) return null;
  return value;
}

export function isRetryable(errorType: ErrorType): boolean {
  return RETRYABLE[errorType];
}

const CONTEXT_PATTERNS = [
  /context[_ ]length/i,
  /prompt is too long/i,
  /maximum context length/i,
  /too many tokens/i,
  /exceeds? the (?:model'?s? )?(?:maximum )?context/i,
  /input token count .* exceeds/i,
];

function mentionsContextLength(facts: ErrorFacts): boolean {
  const texts = [facts.code, facts.type, facts.message];
  return texts.some((t) => typeof t === 'string' && CONTEXT_PATTERNS.some((p) => p.test(t)));
}

function mentionsContentFilter(facts: ErrorFacts): boolean {
  const texts = [facts.code, facts.type];
  return texts.some((t) => typeof t === 'string' && /content[_ ]?filter|content_policy|safety/i.test(t));
}

function byCode(facts: ErrorFacts): ErrorType | null {
  const code = `${facts.code ?? ''} ${facts.type ?? ''}`.toLowerCase();
  if (/rate_limit|resource_exhausted|too_many_requests/.test(code)) return 'rate_limited';
  if (/overloaded|unavailable/.test(code)) return 'overloaded';
  if (mentionsContextLength(facts)) return 'context_length_exceeded';
  if (mentionsContentFilter(facts)) return 'content_filter';
  if (/budget_exceeded/.test(code)) return 'budget_exceeded';
  if (/authentication|invalid_api_key|permission|unauthenticated/.test(code)) return 'auth';
  if (/not_found/.test(code)) return 'not_found';
  if (/deadline_exceeded|timeout/.test(code)) return 'timeout';
  if (/server_error|api_error|internal/.test(code)) return 'server_error';
  return null;
}

/**
 * Finish reasons that mean the provider's safety system stopped the output: OpenAI's
 * `content_filter`, Anthropic's `refusal` (https://docs.anthropic.com/en/api/handling-stop-reasons),
 * Gemini's `SAFETY` family (https://ai.google.dev/api/generate-content#FinishReason).
 */
const CONTENT_FILTER_FINISH: ReadonlySet<string> = new Set([
  'content_filter',
  'refusal',
  'SAFETY',
  'PROHIBITED_CONTENT',
  'BLOCKLIST',
  'SPII',
  'IMAGE_SAFETY',
]);

export function isContentFilterFinish(reason: string): boolean {
  return CONTENT_FILTER_FINISH.has(reason);
}

/** Classify an HTTP error response (status >= 400) or an error event inside a 200 stream. */
export function classifyHttpError(facts: ErrorFacts): Classified {
  const errorType = classifyType(facts);
  return { errorType, retryable: isRetryable(errorType) };
}

function classifyType(facts: ErrorFacts): ErrorType {
  const { status } = facts;
  if (status === 429) return byCode(facts) === 'budget_exceeded' ? 'budget_exceeded' : 'rate_limited';
  if (status === 529 || status === 503) return 'overloaded';
  if (status === 408 || status === 504) return 'timeout';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 400 || status === 413 || status === 422) {
    if (mentionsContextLength(facts)) return 'context_length_exceeded';
    // Gemini answers a bad key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID.
    if (/api_key_invalid|invalid_api_key/i.test(`${facts.code ?? ''} ${facts.type ?? ''}`)) return 'auth';
    if (mentionsContentFilter(facts)) return 'content_filter';
    return 'invalid_request';
  }
  if (status !== null && status >= 500) return byCode(facts) ?? 'server_error';
  // An error event inside a 200 stream, or another 4xx.
  const coded = byCode(facts);
  if (coded) return coded;
  return status !== null && status >= 400 && status < 500 ? 'invalid_request' : 'stream_interrupted';
}

/** Classify a thrown fetch error that is not the caller's own abort. */
export function classifyThrown(error: unknown): Classified {
  const errorType = isTimeoutError(error) ? 'timeout' : 'network';
  return { errorType, retryable: true };
}

function isTimeoutError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const name = (e as { name?: unknown }).name;
    const code = (e as { code?: unknown }).code;
    if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return true;
    }
    if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
