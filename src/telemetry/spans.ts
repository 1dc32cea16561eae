import {
  type Attributes,
  type Context,
  context,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import type { CallRecord, Operation, RequestInfo, TimingComponent } from '../record.js';
import { NANOS_PER_USD, promptOf } from '../record.js';
import { createDeferred } from './deferred.js';
import * as sc from './semconv.js';

interface SpanStart {
  operation: Operation;
  provider: string;
  requestModel: string | null;
  request: RequestInfo;
  serverAddress: string | null;
  serverPort: number | null;
  startMs: number;
  /** The withRetry group of this attempt: its span links to the group's previous attempt. */
  retryGroup?: string | undefined;
  /** The parsed request body: its prompt goes on the span only when captureContent is on. */
  body?: Record<string, unknown> | null;
}

export interface SpanHandle {
  readonly span: Span;
  readonly context: Context;
  readonly traceId: string;
  readonly spanId: string;
}

interface SpanSink {
  start(init: SpanStart): SpanHandle;
  /** Run `fn` with the call's span active, so the upstream HTTP request nests under it. */
  within<T>(handle: SpanHandle, fn: () => T): T;
  /**
   * Ends the span with the record's figures and its own end time, on the next `setImmediate`
   * (./deferred.ts): the exported span is the same, and the caller is not kept waiting for it.
   */
  end(handle: SpanHandle, record: CallRecord): void;
  /** Ends every span handed to `end` so far, now. */
  flush(): void;
}

function spanName(operation: string, model: string | null): string {
  return model ? `${operation} ${model}` : operation;
}

function set(attrs: Attributes, key: string, value: string | number | boolean | string[] | null | undefined) {
  if (value !== null && value !== undefined) attrs[key] = value;
}

function put(span: Span, key: string, value: string | number | boolean | null | undefined) {
  if (value !== null && value !== undefined) span.setAttribute(key, value);
}

export function createSpanSink(options: {
  tracerProvider?: TracerProvider;
  captureContent: boolean;
  /** Failures while ending spans (the caller never sees them). */
  onError?: (error: unknown) => void;
}): SpanSink {
  let tracer: Tracer | null = null;
  // Resolved lazily so a global provider registered after createMeter() is still used.
  const getTracer = () => {
    tracer ??= (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
      sc.SCOPE.name,
      sc.SCOPE.version,
    );
    return tracer;
  };

  function end({ handle, record }: { handle: SpanHandle; record: CallRecord }): void {
    const { span } = handle;
    if (!span.isRecording()) {
      span.end(record.timing.endMs);
      return;
    }
    setEndAttributes(span, record, options.captureContent);
    if (record.outcome === 'error' || record.outcome === 'blocked') {
      span.setStatus({ code: SpanStatusCode.ERROR, message: record.errorType ?? record.outcome });
    }
    emitPhases(getTracer(), handle, record);
    span.end(record.timing.endMs);
  }

  const ending = createDeferred<{ handle: SpanHandle; record: CallRecord }>((items) => {
    for (const item of items) {
      try {
        end(item);
      } catch (error) {
        options.onError?.(error);
      }
    }
  }, options.onError);

  const attempts = createAttemptLinks();

  return {
    start(init) {
      const attributes: Attributes = {};
      set(attributes, sc.GEN_AI_OPERATION_NAME, init.operation);
      set(attributes, sc.GEN_AI_PROVIDER_NAME, init.provider);
      set(attributes, sc.GEN_AI_REQUEST_MODEL, init.requestModel);
      set(attributes, sc.GEN_AI_REQUEST_MAX_TOKENS, init.request.maxTokens);
      set(attributes, sc.GEN_AI_REQUEST_TEMPERATURE, init.request.temperature);
      if (init.request.choices !== null && init.request.choices !== 1) {
        set(attributes, sc.GEN_AI_REQUEST_CHOICE_COUNT, init.request.choices);
      }
      set(attributes, sc.GEN_AI_REQUEST_STREAM, init.request.stream);
      set(attributes, ATTR_SERVER_ADDRESS, init.serverAddress);
      set(attributes, ATTR_SERVER_PORT, init.serverPort);
      if (options.captureContent) {
        const input = promptOf(init.body ?? null);
        if (input !== undefined) set(attributes, sc.GEN_AI_INPUT_MESSAGES, safeStringify(input));
      }
      const parent = context.active();
      const previous = init.retryGroup === undefined ? undefined : attempts.get(init.retryGroup);
      const span = getTracer().startSpan(
        spanName(init.operation, init.requestModel),
        {
          kind: SpanKind.CLIENT,
          startTime: init.startMs,
          attributes,
          links: previous ? [{ context: previous, attributes: PREVIOUS_ATTEMPT }] : undefined,
        },
        parent,
      );
      const sctx = span.spanContext();
      if (init.retryGroup !== undefined) attempts.remember(init.retryGroup, sctx);
      return { span, context: trace.setSpan(parent, span), traceId: sctx.traceId, spanId: sctx.spanId };
    },
    within(handle, fn) {
      return context.with(handle.context, fn);
    },
    end(handle, record) {
      ending.push({ handle, record });
    },
    flush() {
      ending.flush();
    },
  };
}

/**
 * Straight onto the span, one `setAttribute` each: no intermediate object of some forty keys
 * for `setAttributes` to walk. Absent figures (null) are left off.
 */
function setEndAttributes(span: Span, r: CallRecord, captureContent: boolean): void {
  put(span, sc.GEN_AI_RESPONSE_MODEL, r.responseModel);
  put(span, sc.GEN_AI_RESPONSE_ID, r.responseId);
  if (r.finishReasons.length > 0) span.setAttribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, r.finishReasons);
  if (r.request.model === null && r.requestModel) span.setAttribute(sc.GEN_AI_REQUEST_MODEL, r.requestModel);
  const usage = r.usage;
  if (usage) {
    span.setAttribute(sc.GEN_AI_USAGE_INPUT_TOKENS, usage.inputTokens);
    span.setAttribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, usage.outputTokens);
    span.setAttribute(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cacheReadTokens);
    span.setAttribute(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cacheWriteTokens);
    span.setAttribute(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoningTokens);
    span.setAttribute(sc.LLM_METER.usageSource, usage.source);
  }
  const t = r.timing;
  if (t.timeToFirstTokenMs !== null) {
    // Seconds, per the conventions.
    span.setAttribute(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, t.timeToFirstTokenMs / 1000);
    span.setAttribute(sc.LLM_METER.ttftMs, t.timeToFirstTokenMs);
  }
  const cost = r.cost;
  if (cost.totalNanos !== null) span.setAttribute(sc.GEN_AI_USAGE_COST, cost.totalNanos / NANOS_PER_USD);
  span.setAttribute(sc.LLM_METER.unpriced, cost.totalNanos === null);
  if (cost.inputNanos !== null) span.setAttribute(sc.LLM_METER.costInput, cost.inputNanos / NANOS_PER_USD);
  if (cost.cacheReadNanos !== null) {
    span.setAttribute(sc.LLM_METER.costCacheRead, cost.cacheReadNanos / NANOS_PER_USD);
  }
  if (cost.cacheWriteNanos !== null) {
    span.setAttribute(sc.LLM_METER.costCacheWrite, cost.cacheWriteNanos / NANOS_PER_USD);
  }
  if (cost.outputNanos !== null) span.setAttribute(sc.LLM_METER.costOutput, cost.outputNanos / NANOS_PER_USD);
  put(span, sc.LLM_METER.costSource, cost.source);
  put(span, sc.LLM_METER.pricedAs, cost.pricedAs);
  span.setAttribute(sc.LLM_METER.outcome, r.outcome);
  span.setAttribute(sc.LLM_METER.callId, r.id);
  span.setAttribute(sc.LLM_METER.requestParsed, r.request.parsed);
  if (r.request.toolCount) span.setAttribute(sc.LLM_METER.toolCount, r.request.toolCount);
  if (r.request.toolRounds) span.setAttribute(sc.LLM_METER.toolRounds, r.request.toolRounds);
  if (r.toolCalls) span.setAttribute(sc.LLM_METER.toolCalls, r.toolCalls);
  if (r.invalidToolCalls) span.setAttribute(sc.LLM_METER.invalidToolCalls, r.invalidToolCalls);
  if (r.chunks) span.setAttribute(sc.LLM_METER.chunks, r.chunks);
  put(span, ATTR_HTTP_RESPONSE_STATUS_CODE, r.httpStatus);
  if (r.errorType) {
    span.setAttribute(ATTR_ERROR_TYPE, r.errorType);
    put(span, sc.LLM_METER.retryable, r.retryable);
    put(span, sc.LLM_METER.errorCode, r.errorCode);
  }
  put(span, sc.LLM_METER.retryAfterMs, r.retryAfterMs);
  const rateLimit = r.rateLimit;
  if (rateLimit) {
    put(span, sc.LLM_METER.remainingRequests, rateLimit.remainingRequests);
    put(span, sc.LLM_METER.remainingTokens, rateLimit.remainingTokens);
    put(span, sc.LLM_METER.resetTokensMs, rateLimit.resetTokensMs);
  }
  const p = r.preflight;
  put(span, sc.LLM_METER.inputEstimate, p.inputTokensEstimate);
  if (p.projectedMaxCostNanos !== null) {
    span.setAttribute(sc.LLM_METER.projectedCost, p.projectedMaxCostNanos / NANOS_PER_USD);
  }
  put(span, sc.LLM_METER.contextWindow, p.contextWindow);
  put(span, sc.LLM_METER.contextExceeded, p.contextExceeded);
  put(span, sc.LLM_METER.generationMs, t.generationMs);
  put(span, sc.LLM_METER.tokensPerSecond, t.outputTokensPerSecond);
  put(span, sc.LLM_METER.serverProcessingMs, t.serverProcessingMs);
  setComponent(span, sc.LLM_METER.queueMs, sc.LLM_METER.queueSource, t.queue);
  setComponent(span, sc.LLM_METER.prefillMs, sc.LLM_METER.prefillSource, t.prefill);
  if (t.generation) span.setAttribute(sc.LLM_METER.generationSource, t.generation.source);
  const who = r.attribution;
  put(span, sc.LLM_METER.user, who.user);
  put(span, sc.LLM_METER.project, who.project);
  put(span, sc.LLM_METER.feature, who.feature);
  put(span, sc.LLM_METER.apiKeyHash, who.apiKeyHash);
  const tags = who.tags;
  for (const k in tags) {
    if (Object.hasOwn(tags, k)) put(span, sc.LLM_METER.tagPrefix + k, tags[k]);
  }
  if (captureContent && r.content?.output !== undefined) {
    span.setAttribute(
      sc.GEN_AI_OUTPUT_MESSAGES,
      safeStringify([{ role: 'assistant', parts: [{ type: 'text', content: r.content.output }] }]),
    );
  }
}

function setComponent(span: Span, msKey: string, sourceKey: string, c: TimingComponent | null) {
  if (!c) return;
  span.setAttribute(msKey, c.ms);
  span.setAttribute(sourceKey, c.source);
}

/**
 * Child spans with explicit times so a trace viewer shows the waterfall. Prefill ends at the
 * first token; queue ends where prefill starts; generation runs from first to last token.
 * Server-reported spans are anchored the same way and clipped to the call.
 */
function emitPhases(tracer: Tracer, handle: SpanHandle, r: CallRecord): void {
  const t = r.timing;
  const first = t.firstTokenMs ?? t.headersMs;
  if (first === null) return;
  const phase = (name: string, start: number, end: number, c: TimingComponent) => {
    const s = Math.max(t.startMs, Math.min(start, t.endMs));
    const e = Math.max(s, Math.min(end, t.endMs));
    tracer
      .startSpan(
        name,
        { kind: SpanKind.INTERNAL, startTime: s, attributes: { [sc.LLM_METER.componentSource]: c.source } },
        handle.context,
      )
      .end(e);
  };
  const prefillEnd = first;
  const prefillStart = prefillEnd - (t.prefill?.ms ?? 0);
  if (t.queue) phase('queue', prefillStart - t.queue.ms, prefillStart, t.queue);
  if (t.prefill) phase('prefill', prefillStart, prefillEnd, t.prefill);
  if (t.generation) {
    const end = t.lastTokenMs ?? t.endMs;
    phase('generation', end - t.generation.ms, end, t.generation);
  }
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

const PREVIOUS_ATTEMPT = { 'llm_meter.link.type': 'previous_attempt' } as const;
/** Retry groups remembered at once; an older group's next attempt starts without a link. */
const MAX_RETRY_GROUPS = 1024;

/** The last attempt's span of each recent retry group, oldest evicted first. */
function createAttemptLinks() {
  const last = new Map<string, SpanContext>();
  return {
    get: (group: string) => last.get(group),
    remember(group: string, span: SpanContext) {
      last.delete(group);
      last.set(group, span);
      if (last.size > MAX_RETRY_GROUPS) last.delete(last.keys().next().value!);
    },
  };
}
