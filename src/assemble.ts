import { createHash } from 'node:crypto';
import {
  classifyHttpError,
  classifyThrown,
  isContentFilterFinish,
  isRetryable,
  safeErrorCode,
} from './errors/classify.js';
import type { CallEnd } from './fetch/call.js';
import type { Refusal } from './fetch/refuse.js';
import type { Target } from './fetch/request.js';
import type { PriceBook } from './pricing/index.js';
import { apiKeyOf } from './providers/credentials.js';
import { clip, MAX_CHOICES, MAX_NAME_CHARS } from './providers/json.js';
import type { ParsedResponse, ProviderError } from './providers/types.js';
import {
  type CallRecord,
  type CallTiming,
  type ErrorType,
  MAX_RETRY_AFTER_MS,
  type Outcome,
  promptOf,
  type TimingComponent,
  type TokenUsage,
} from './record.js';
import { type EnvelopePoint, fitEnvelope, observe, splitTimeToFirstToken } from './timing/envelope.js';
import { countOutputText, estimateChatInput } from './tokens/index.js';
import { clampUsage } from './usage.js';

/**
 * Turns one finished call into its CallRecord: outcome and error class, exact or estimated
 * usage, cost, and the latency split. Synchronous unless usage has to be counted with the
 * tokenizer (which loads lazily).
 */
interface Assembler {
  build(end: CallEnd): CallRecord | Promise<CallRecord>;
}

const MAX_ENVELOPES = 1000;

const NO_COST: CallRecord['cost'] = {
  totalNanos: 0,
  inputNanos: 0,
  cacheReadNanos: 0,
  cacheWriteNanos: 0,
  outputNanos: 0,
  source: null,
  pricedAs: null,
};

/**
 * A duration the server reports for its part of this call (queue, prefill, generation, processing),
 * or null when it cannot be one: not a number, negative, or longer than the whole call as the
 * client timed it (the server's part happens inside it). The component is then estimated instead.
 */
function withinCall(ms: number | null | undefined, durationMs: number): number | null {
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && ms <= durationMs ? ms : null;
}

export { MAX_RETRY_AFTER_MS };

/** A provider's retry wait in [0, MAX_RETRY_AFTER_MS] milliseconds, or null. */
function boundedWait(ms: number | null): number | null {
  if (ms === null || Number.isNaN(ms)) return null;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/**
 * The names and lists a response reports, bounded: they become span names, metric labels, rows.
 * (Adapters bound what they hold while reading; this bounds what any adapter hands over.)
 */
function bounded(parsed: ParsedResponse): ParsedResponse {
  return {
    ...parsed,
    responseModel: clip(parsed.responseModel, MAX_NAME_CHARS),
    responseId: clip(parsed.responseId, MAX_NAME_CHARS),
    finishReasons: parsed.finishReasons
      .slice(0, MAX_CHOICES)
      .map((r) => clip(r, MAX_FINISH_REASON_CHARS) ?? ''),
  };
}

const MAX_FINISH_REASON_CHARS = 64;

/** The call as the record may tell it: its response's names and lists bounded (a new frozen end). */
function withBoundedResponse(end: CallEnd): CallEnd {
  return Object.freeze({ ...end, parsed: bounded(end.parsed) });
}

function generated(end: CallEnd): boolean {
  if (end.ending === 'refused' || end.ending === 'thrown') return false;
  return end.status !== null && end.status < 400;
}

/** How a call ended, as its record says: the outcome, the error class and the provider's code. */
export interface CallOutcome {
  outcome: Outcome;
  errorType: ErrorType | null;
  errorCode: string | null;
  /** A wait named only in an error body (Gemini's RetryInfo); headers come first. */
  retryAfterMs?: number | null;
}

/** The outcome of a refusal by a gate, by its kind: `blocked`, never sent. */
function refusedOutcome(refusal: Refusal): CallOutcome {
  switch (refusal.kind) {
    case 'budget':
      return { outcome: 'blocked', errorType: 'budget_exceeded', errorCode: null };
    case 'context_window':
      return { outcome: 'blocked', errorType: 'context_length_exceeded', errorCode: 'context_window' };
    default:
      // As a guard's refusal answered beneath the meter is recorded (see outcomeOf).
      return {
        outcome: 'blocked',
        errorType: classifyHttpError({ status: refusal.status, type: refusal.type, message: refusal.message })
          .errorType,
        errorCode: safeErrorCode(refusal.type),
        retryAfterMs: refusal.retryAfterMs ?? null,
      };
  }
}

/** A pure function of the finished call. */
export function outcomeOf(end: CallEnd): CallOutcome {
  if (end.refusal) return refusedOutcome(end.refusal);
  const parsed = end.parsed;
  // A caller that stops reading after the terminal event or an error event (the SDKs cancel the
  // body when they throw on one) is reacting to how the call ended, not cutting it short.
  const ended = parsed.terminal || parsed.streamError !== null;
  if (end.callerAborted && !ended) return { outcome: 'cancelled', errorType: null, errorCode: null };
  if (end.ending === 'thrown') {
    return { outcome: 'error', errorType: classifyThrown(end.error).errorType, errorCode: null };
  }
  const status = end.status ?? 0;
  if (status >= 400) {
    const err = end.providerError ?? NO_PROVIDER_ERROR;
    const c = classifyHttpError({ status, ...err });
    // A local guard's refusal never reached the provider: blocked, like a budget's.
    return {
      outcome: end.guard ? 'blocked' : 'error',
      errorType: c.errorType,
      errorCode: safeErrorCode(err.code ?? err.type),
      retryAfterMs: err.retryAfterMs ?? null,
    };
  }
  if (parsed.streamError) {
    // An error event after a 200 interrupts the stream, whatever the provider calls it (its
    // own code stays in errorCode); only a filter or a context overflow says more.
    const c = classifyHttpError({ status: null, ...parsed.streamError });
    const specific = c.errorType === 'content_filter' || c.errorType === 'context_length_exceeded';
    return {
      outcome: 'error',
      errorType: specific ? c.errorType : 'stream_interrupted',
      errorCode: safeErrorCode(parsed.streamError.code ?? parsed.streamError.type),
    };
  }
  if (end.ending === 'error') {
    const thrown = classifyThrown(end.error);
    return {
      outcome: 'error',
      errorType: thrown.errorType === 'timeout' ? 'timeout' : 'stream_interrupted',
      errorCode: null,
    };
  }
  // Something streamed (events read, or too large to read) but the end never came.
  if (end.info.stream && (end.chunks > 0 || end.unreadBytes > 0) && !parsed.terminal) {
    return { outcome: 'error', errorType: 'stream_interrupted', errorCode: null };
  }
  if (parsed.finishReasons.some(isContentFilterFinish)) {
    return { outcome: 'error', errorType: 'content_filter', errorCode: 'content_filter' };
  }
  return { outcome: 'ok', errorType: null, errorCode: null };
}

const NO_PROVIDER_ERROR: ProviderError = { code: null, type: null, message: null };

export function createAssembler(options: {
  prices: PriceBook;
  captureContent: boolean;
  apiKeyHashSalt: string | undefined;
}): Assembler {
  const envelopes = new Map<string, readonly EnvelopePoint[]>();

  function timing(end: CallEnd, usage: TokenUsage | null): CallTiming {
    const { startMs, endMs, headersMs, firstTokenMs, lastTokenMs, parsed } = end;
    const stream = end.info.stream && end.chunks > 0;
    const ttft = stream && firstTokenMs !== null ? firstTokenMs - startMs : null;
    const generationMs =
      stream && firstTokenMs !== null && lastTokenMs !== null ? lastTokenMs - firstTokenMs : null;
    let queue: TimingComponent | null = null;
    let prefill: TimingComponent | null = null;
    let generation: TimingComponent | null =
      generationMs !== null ? { ms: generationMs, source: 'observed' } : null;
    const server = parsed.serverTiming;
    const within = (ms: number | null | undefined) => withinCall(ms, endMs - startMs);
    if (server) {
      const [q, p, g] = [within(server.queueMs), within(server.prefillMs), within(server.generationMs)];
      if (q !== null) queue = { ms: q, source: 'provider' };
      if (p !== null) prefill = { ms: p, source: 'provider' };
      if (g !== null) generation = { ms: g, source: 'provider' };
    }
    const model = end.info.model ?? parsed.responseModel;
    if (ttft !== null && usage && model && (queue === null || prefill === null)) {
      const key = `${end.detection.provider}\u0000${model}`;
      const points = envelopes.get(key) ?? [];
      const fit = fitEnvelope(points);
      if (fit) {
        const split = splitTimeToFirstToken(fit, usage.inputTokens, ttft);
        queue ??= { ms: split.queueMs, source: 'estimated' };
        prefill ??= { ms: split.prefillMs, source: 'estimated' };
      }
      if (end.ending === 'done' && envelopes.size < MAX_ENVELOPES) {
        envelopes.set(key, observe(points, usage.inputTokens, ttft));
      } else if (envelopes.has(key)) {
        envelopes.set(key, observe(points, usage.inputTokens, ttft));
      }
    }
    const outputTokens = usage?.outputTokens ?? 0;
    return {
      startMs,
      headersMs,
      firstTokenMs: stream ? firstTokenMs : null,
      lastTokenMs: stream ? lastTokenMs : null,
      endMs,
      durationMs: endMs - startMs,
      timeToFirstTokenMs: ttft,
      generationMs,
      outputTokensPerSecond:
        generationMs !== null && generationMs > 0 && outputTokens > 1
          ? ((outputTokens - 1) * 1000) / generationMs
          : null,
      queue,
      prefill,
      generation,
      serverProcessingMs: within(end.facts?.serverProcessingMs),
    };
  }

  function apiKeyHash(target: Target): string | undefined {
    if (!options.apiKeyHashSalt) return undefined;
    // Only here are the request's headers needed: the target copies them on first use.
    const key = apiKeyOf(target.headers);
    if (!key) return undefined;
    return createHash('sha256')
      .update(options.apiKeyHashSalt)
      .update('\u0000')
      .update(key.value)
      .digest('hex')
      .slice(0, 12);
  }

  function finish(end: CallEnd, usage: TokenUsage | null): CallRecord {
    const { outcome, errorType, errorCode, retryAfterMs } = outcomeOf(end);
    const parsed = end.parsed;
    const model = parsed.responseModel ?? end.info.model;
    const price = usage ? options.prices.lookup(end.detection.provider, model, usage.inputTokens) : null;
    const fallback =
      usage && !price && parsed.responseModel && end.info.model && parsed.responseModel !== end.info.model
        ? options.prices.lookup(end.detection.provider, end.info.model, usage.inputTokens)
        : null;
    // Nothing generated (refused, an error status, no response at all): nothing billed. This is
    // a known zero, unlike an unknown price, which stays null.
    // Token counting endpoints are free: their usage is the count, not a bill.
    const free = end.detection.operation === 'count_tokens';
    const cost =
      free || (!usage && !generated(end)) ? NO_COST : options.prices.cost(usage, price ?? fallback);
    const facts = end.facts;
    const record: CallRecord = {
      id: end.id,
      traceId: end.span?.traceId ?? null,
      spanId: end.span?.spanId ?? null,
      provider: end.detection.provider,
      operation: end.detection.operation,
      requestModel: end.info.model,
      responseModel: parsed.responseModel,
      responseId: parsed.responseId,
      serverAddress: end.target.address,
      serverPort: end.target.port,
      request: end.info,
      attribution: { ...end.attribution, apiKeyHash: apiKeyHash(end.target) },
      outcome,
      errorType,
      errorCode,
      retryable: errorType ? (facts?.shouldRetry ?? isRetryable(errorType)) : null,
      // Headers first (Retry-After); Gemini names the wait only in its error body (RetryInfo).
      retryAfterMs: boundedWait(facts?.retryAfterMs ?? retryAfterMs ?? null),
      httpStatus: end.status,
      rateLimit: facts?.rateLimit ?? null,
      finishReasons: parsed.finishReasons,
      usage,
      toolCalls: parsed.toolCalls,
      invalidToolCalls: parsed.invalidToolCalls,
      preflight: end.preflight,
      cost,
      timing: timing(end, usage),
      chunks: end.chunks,
    };
    if (options.captureContent) {
      record.content = {
        input: promptOf(end.body),
        output: parsed.outputText,
      };
    }
    return record;
  }

  return {
    build(call) {
      const end = withBoundedResponse(call);
      const parsed = end.parsed;
      const provider = parsed.usage;
      const reported = provider ? clampUsage(provider, 'provider') : null;
      const sent = end.ending !== 'refused';
      const complete = parsed.terminal && !parsed.streamError && (end.status ?? 0) < 400;
      // The final figures were read, but not all of what came with them: kept, and flagged. (They
      // count the unread event; its size would not: an image's base64 is no measure of its tokens.)
      if (reported && complete) return finish(end, withUnread(reported, end.unreadBytes));
      // Nothing was generated: a refusal, an error status, or a failure before the response.
      if (!sent || (end.status ?? 0) >= 400 || end.status === null) {
        return finish(end, reported);
      }
      return estimateUsage(end, reported).then(
        (usage) => finish(end, usage),
        () => finish(end, reported),
      );
    },
  };
}

/**
 * Usage for a call that ended without the provider's final figures (interrupted, cancelled,
 * or a server that sends none): keep what the provider did say, count the rest.
 */
async function estimateUsage(end: CallEnd, provider: TokenUsage | null): Promise<TokenUsage | null> {
  const parsed = end.parsed;
  const model = parsed.responseModel ?? end.info.model;
  const counted =
    (parsed.outputText ? (await countOutputText(parsed.outputText, model)).tokens : 0) +
    (GENERATES.has(end.detection.operation) ? Math.ceil(end.unreadBytes / BYTES_PER_TOKEN) : 0);
  let inputTokens = provider?.inputTokens ?? end.preflight.inputTokensEstimate;
  if (inputTokens === null || inputTokens === undefined) {
    if (!end.body) return null;
    inputTokens = (await estimateChatInput(end.body, model, end.detection.adapter.bodyShape(end.detection)))
      .tokens;
  }
  const usage = clampUsage(
    {
      inputTokens,
      outputTokens: Math.max(provider?.outputTokens ?? 0, counted),
      cacheReadTokens: provider?.cacheReadTokens ?? 0,
      cacheWriteTokens: provider?.cacheWriteTokens ?? 0,
      reasoningTokens: provider?.reasoningTokens ?? 0,
    },
    'estimated',
  );
  // What was clamped in the provider's figures stays said.
  if (provider?.clamped) usage.clamped = [...new Set([...provider.clamped, ...(usage.clamped ?? [])])];
  return withUnread(usage, end.unreadBytes);
}

/** Operations whose response is generated output (an unread part of it is output). */
const GENERATES: ReadonlySet<string> = new Set(['chat', 'text_completion', 'generate_content']);

/**
 * Tokens for bytes that could not be read: about four characters of English text per token
 * (https://help.openai.com/en/articles/4936856), bytes counting each character at least once and
 * JSON framing too, so it errs high, as a budget should.
 */
const BYTES_PER_TOKEN = 4;

/** `usage` flagged with the response bytes that could not be read, if any. */
function withUnread(usage: TokenUsage, unreadBytes: number): TokenUsage {
  if (unreadBytes <= 0) return usage;
  return { ...usage, source: 'estimated', unreadBytes };
}
