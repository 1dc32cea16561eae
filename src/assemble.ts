import { createHash } from 'node:crypto';
import {
  classifyHttpError,
  classifyThrown,
  isContentFilterFinish,
  isRetryable,
  safeErrorCode,
} from './errors/classify.js';
import type { Target } from './fetch/request.js';
import type { CallState } from './fetch/wrap.js';
import type { PriceBook } from './pricing/index.js';
import { clip, MAX_CHOICES, MAX_NAME_CHARS } from './providers/json.js';
import { emptyParsed, type ParsedResponse } from './providers/types.js';
import {
  type CallRecord,
  type CallTiming,
  type ErrorType,
  type Outcome,
  promptOf,
  type TimingComponent,
  type TokenUsage,
} from './record.js';
import { type EnvelopePoint, fitEnvelope, observe, splitTimeToFirstToken } from './timing/envelope.js';
import { countOutputText, estimateChatInput } from './tokens/index.js';
import { clampUsage } from './usage.js';

/**
 * Turns the state of one finished call into its CallRecord: outcome and error class, exact or
 * estimated usage, cost, and the latency split. Synchronous unless usage has to be counted
 * with the tokenizer (which loads lazily).
 */
export interface Assembler {
  build(state: CallState): CallRecord | Promise<CallRecord>;
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
export function withinCall(ms: number | null | undefined, durationMs: number): number | null {
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && ms <= durationMs ? ms : null;
}

/** The longest wait a provider's Retry-After is believed for: a monthly quota resets within 31 days. */
export const MAX_RETRY_AFTER_MS = 31 * 24 * 3_600_000;

/** A provider's retry wait in [0, MAX_RETRY_AFTER_MS] milliseconds, or null. */
export function boundedWait(ms: number | null): number | null {
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

function generated(state: CallState): boolean {
  if (state.ending === 'blocked' || state.ending === 'refused' || state.ending === 'thrown') return false;
  return state.status !== null && state.status < 400;
}

export function createAssembler(options: {
  prices: PriceBook;
  captureContent: boolean;
  apiKeyHashSalt: string | undefined;
}): Assembler {
  const envelopes = new Map<string, readonly EnvelopePoint[]>();

  function timing(state: CallState, parsed: ParsedResponse, usage: TokenUsage | null): CallTiming {
    const { startMs, endMs, headersMs, firstTokenMs, lastTokenMs } = state;
    const stream = state.info.stream && state.chunks > 0;
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
    const model = state.info.model ?? parsed.responseModel;
    if (ttft !== null && usage && model && (queue === null || prefill === null)) {
      const key = `${state.detection.provider}\u0000${model}`;
      const points = envelopes.get(key) ?? [];
      const fit = fitEnvelope(points);
      if (fit) {
        const split = splitTimeToFirstToken(fit, usage.inputTokens, ttft);
        queue ??= { ms: split.queueMs, source: 'estimated' };
        prefill ??= { ms: split.prefillMs, source: 'estimated' };
      }
      if (state.ending === 'done' && envelopes.size < MAX_ENVELOPES) {
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
      serverProcessingMs: within(state.facts?.serverProcessingMs),
    };
  }

  function outcomeOf(
    state: CallState,
    parsed: ParsedResponse,
  ): {
    outcome: Outcome;
    errorType: ErrorType | null;
    errorCode: string | null;
    retryAfterMs?: number | null;
  } {
    if (state.ending === 'blocked')
      return { outcome: 'blocked', errorType: 'budget_exceeded', errorCode: null };
    if (state.ending === 'refused') {
      return { outcome: 'blocked', errorType: 'context_length_exceeded', errorCode: 'context_window' };
    }
    // A caller that stops reading after the terminal event or an error event (the SDKs cancel the
    // body when they throw on one) is reacting to how the call ended, not cutting it short.
    const ended = parsed.terminal || parsed.streamError !== null;
    if (state.callerAborted && !ended) return { outcome: 'cancelled', errorType: null, errorCode: null };
    if (state.ending === 'thrown') {
      return { outcome: 'error', errorType: classifyThrown(state.error).errorType, errorCode: null };
    }
    const status = state.status ?? 0;
    if (status >= 400) {
      const err = state.detection.adapter.parseError(state.errorBody);
      const c = classifyHttpError({ status, ...err });
      // A local guard's refusal never reached the provider: blocked, like a budget's.
      return {
        outcome: state.localGuard ? 'blocked' : 'error',
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
    if (state.ending === 'error') {
      const thrown = classifyThrown(state.error);
      return {
        outcome: 'error',
        errorType: thrown.errorType === 'timeout' ? 'timeout' : 'stream_interrupted',
        errorCode: null,
      };
    }
    // Something streamed (events read, or too large to read) but the end never came.
    if (state.info.stream && (state.chunks > 0 || state.unreadBytes > 0) && !parsed.terminal) {
      return { outcome: 'error', errorType: 'stream_interrupted', errorCode: null };
    }
    if (parsed.finishReasons.some(isContentFilterFinish)) {
      return { outcome: 'error', errorType: 'content_filter', errorCode: 'content_filter' };
    }
    return { outcome: 'ok', errorType: null, errorCode: null };
  }

  function apiKeyHash(target: Target): string | undefined {
    if (!options.apiKeyHashSalt) return undefined;
    // Only here are the request's headers needed: the target copies them on first use.
    const headers = target.headers;
    const auth = headers.get('authorization');
    const key =
      headers.get('x-api-key') ??
      headers.get('api-key') ??
      headers.get('x-goog-api-key') ??
      (auth?.startsWith('Bearer ') ? auth.slice(7) : auth);
    if (!key) return undefined;
    return createHash('sha256')
      .update(options.apiKeyHashSalt)
      .update('\u0000')
      .update(key)
      .digest('hex')
      .slice(0, 12);
  }

  function finish(state: CallState, wire: ParsedResponse, usage: TokenUsage | null): CallRecord {
    const parsed = bounded(wire);
    const { outcome, errorType, errorCode, retryAfterMs } = outcomeOf(state, parsed);
    const model = parsed.responseModel ?? state.info.model;
    const price = usage ? options.prices.lookup(state.detection.provider, model, usage.inputTokens) : null;
    const fallback =
      usage && !price && parsed.responseModel && state.info.model && parsed.responseModel !== state.info.model
        ? options.prices.lookup(state.detection.provider, state.info.model, usage.inputTokens)
        : null;
    // Nothing generated (refused, an error status, no response at all): nothing billed. This is
    // a known zero, unlike an unknown price, which stays null.
    // Token counting endpoints are free: their usage is the count, not a bill.
    const free = state.detection.operation === 'count_tokens';
    const cost =
      free || (!usage && !generated(state)) ? NO_COST : options.prices.cost(usage, price ?? fallback);
    const facts = state.facts;
    const record: CallRecord = {
      id: state.id,
      traceId: state.span?.traceId ?? null,
      spanId: state.span?.spanId ?? null,
      provider: state.detection.provider,
      operation: state.detection.operation,
      requestModel: state.info.model,
      responseModel: parsed.responseModel,
      responseId: parsed.responseId,
      serverAddress: state.target.address,
      serverPort: state.target.port,
      request: state.info,
      attribution: { ...state.attribution, apiKeyHash: apiKeyHash(state.target) },
      outcome,
      errorType,
      errorCode,
      retryable: errorType ? (facts?.shouldRetry ?? isRetryable(errorType)) : null,
      // Headers first (Retry-After); Gemini names the wait only in its error body (RetryInfo).
      retryAfterMs: boundedWait(facts?.retryAfterMs ?? retryAfterMs ?? null),
      httpStatus: state.status,
      rateLimit: facts?.rateLimit ?? null,
      finishReasons: parsed.finishReasons,
      usage,
      toolCalls: parsed.toolCalls,
      invalidToolCalls: parsed.invalidToolCalls,
      preflight: state.preflight,
      cost,
      timing: timing(state, parsed, usage),
      chunks: state.chunks,
    };
    if (options.captureContent) {
      record.content = {
        input: promptOf(state.body),
        output: parsed.outputText,
      };
    }
    return record;
  }

  return {
    build(state) {
      let parsed: ParsedResponse;
      try {
        parsed = state.parser.result();
      } catch {
        parsed = emptyParsed();
      }
      const provider = parsed.usage;
      const reported = provider ? clampUsage(provider, 'provider') : null;
      const sent = state.ending !== 'blocked' && state.ending !== 'refused';
      const complete = parsed.terminal && !parsed.streamError && (state.status ?? 0) < 400;
      // The final figures were read, but not all of what came with them: kept, and flagged. (They
      // count the unread event; its size would not: an image's base64 is no measure of its tokens.)
      if (reported && complete) return finish(state, parsed, withUnread(reported, state.unreadBytes));
      // Nothing was generated: a refusal, an error status, or a failure before the response.
      if (!sent || (state.status ?? 0) >= 400 || state.status === null) {
        return finish(state, parsed, reported);
      }
      return estimateUsage(state, parsed, reported).then(
        (usage) => finish(state, parsed, usage),
        () => finish(state, parsed, reported),
      );
    },
  };
}

/**
 * Usage for a call that ended without the provider's final figures (interrupted, cancelled,
 * or a server that sends none): keep what the provider did say, count the rest.
 */
async function estimateUsage(
  state: CallState,
  parsed: ParsedResponse,
  provider: TokenUsage | null,
): Promise<TokenUsage | null> {
  const model = parsed.responseModel ?? state.info.model;
  const counted =
    (parsed.outputText ? (await countOutputText(parsed.outputText, model)).tokens : 0) +
    (GENERATES.has(state.detection.operation) ? Math.ceil(state.unreadBytes / BYTES_PER_TOKEN) : 0);
  let inputTokens = provider?.inputTokens ?? state.preflight.inputTokensEstimate;
  if (inputTokens === null || inputTokens === undefined) {
    if (!state.body) return null;
    inputTokens = (
      await estimateChatInput(state.body, model, state.detection.adapter.bodyShape(state.detection))
    ).tokens;
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
  return withUnread(usage, state.unreadBytes);
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
