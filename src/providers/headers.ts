import { parseResetDuration, parseRetryAfter } from '../errors/retry-after.js';
import type { HeaderFacts } from './types.js';

function intHeader(headers: Headers, name: string): number | null {
  const v = headers.get(name);
  if (v === null) return null;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : null;
}

/**
 * Rate-limit facts under a header prefix: OpenAI and OpenAI-compatible servers use
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; Anthropic uses
 * `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`.
 */
export function readRateLimitHeaders(headers: Headers, style: 'openai' | 'anthropic'): HeaderFacts {
  const h = (kind: 'limit' | 'remaining', what: 'requests' | 'tokens') =>
    intHeader(
      headers,
      style === 'openai' ? `x-ratelimit-${kind}-${what}` : `anthropic-ratelimit-${what}-${kind}`,
    );
  const remainingRequests = h('remaining', 'requests');
  const remainingTokens = h('remaining', 'tokens');
  const limitRequests = h('limit', 'requests');
  const limitTokens = h('limit', 'tokens');
  let resetTokensMs: number | null = null;
  if (style === 'openai') {
    // Azure OpenAI sends `x-rate-limit-reset-tokens` (seconds) instead of Retry-After on 429.
    resetTokensMs =
      parseResetDuration(headers.get('x-ratelimit-reset-tokens')) ??
      parseResetDuration(headers.get('x-rate-limit-reset-tokens'));
  } else {
    const reset = headers.get('anthropic-ratelimit-tokens-reset');
    const at = reset === null ? Number.NaN : Date.parse(reset);
    resetTokensMs = Number.isNaN(at) ? null : Math.max(0, at - Date.now());
  }
  const any =
    remainingRequests !== null || remainingTokens !== null || limitRequests !== null || limitTokens !== null;
  const processing = headers.get('openai-processing-ms');
  const processingMs = processing === null ? Number.NaN : Number.parseFloat(processing);
  return {
    rateLimit:
      any || resetTokensMs !== null
        ? { remainingRequests, remainingTokens, limitRequests, limitTokens, resetTokensMs }
        : null,
    // Azure OpenAI's 429s name the wait only as `x-rate-limit-reset-tokens` (seconds).
    retryAfterMs:
      parseRetryAfter(headers.get('retry-after-ms'), headers.get('retry-after')) ??
      (style === 'openai' ? parseResetDuration(headers.get('x-rate-limit-reset-tokens')) : null),
    serverProcessingMs: Number.isFinite(processingMs) ? processingMs : null,
    shouldRetry: shouldRetry(headers),
  };
}

function shouldRetry(headers: Headers): boolean | null {
  const value = headers.get('x-should-retry');
  return value === 'true' ? true : value === 'false' ? false : null;
}

/**
 * The `dur` of the first Server-Timing metric that has one (https://www.w3.org/TR/server-timing/),
 * e.g. Google front ends' `gfet4t7; dur=1234`: the milliseconds the server spent on the request.
 */
function parseServerTimingMs(value: string | null): number | null {
  if (value === null) return null;
  for (const metric of value.split(',')) {
    for (const param of metric.split(';').slice(1)) {
      const [name, raw] = param.split('=');
      if (name?.trim().toLowerCase() !== 'dur' || raw === undefined) continue;
      const ms = Number.parseFloat(raw.trim().replace(/^"|"$/g, ''));
      if (Number.isFinite(ms) && ms >= 0) return ms;
    }
  }
  return null;
}

/**
 * Facts from servers without rate-limit headers (Gemini, Ollama): a standard Retry-After, the
 * Server-Timing duration and a request id where they send them.
 */
export function readPlainHeaders(headers: Headers): HeaderFacts {
  return {
    rateLimit: null,
    retryAfterMs: parseRetryAfter(null, headers.get('retry-after')),
    serverProcessingMs: parseServerTimingMs(headers.get('server-timing')),
    shouldRetry: shouldRetry(headers),
  };
}
