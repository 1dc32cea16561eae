import {
  type Attributes,
  type Context,
  context,
  type Span,
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
import { nanosToUsd } from '../record.js';
import * as sc from './semconv.js';

export interface SpanStart {
  operation: Operation;
  provider: string;
  requestModel: string | null;
  request: RequestInfo;
  serverAddress: string | null;
  serverPort: number | null;
  startMs: number;
  /** Prompt content, only when captureContent is on. */
  input?: unknown;
}

export interface SpanHandle {
  readonly span: Span;
  readonly context: Context;
  readonly traceId: string;
  readonly spanId: string;
}

export interface SpanSink {
  start(init: SpanStart): SpanHandle;
  /** Run `fn` with the call's span active, so the upstream HTTP request nests under it. */
  within<T>(handle: SpanHandle, fn: () => T): T;
  end(handle: SpanHandle, record: CallRecord): void;
}

export function spanName(operation: string, model: string | null): string {
  return model ? `${operation} ${model}` : operation;
}

function set(attrs: Attributes, key: string, value: string | number | boolean | string[] | null | undefined) {
  if (value !== null && value !== undefined) attrs[key] = value;
}

export function createSpanSink(options: {
  tracerProvider?: TracerProvider;
  captureContent: boolean;
}): SpanSink {
  let tracer: Tracer | null = null;
  // Resolved lazily so a global provider registered after createMeter() is still used.
  const getTracer = () => {
    tracer ??= (options.tracerProvider ?? trace.getTracerProvider()).getTracer('llm-meter', '0.1.0');
    return tracer;
  };

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
      if (options.captureContent && init.input !== undefined) {
        set(attributes, sc.GEN_AI_INPUT_MESSAGES, safeStringify(init.input));
      }
      const parent = context.active();
      const span = getTracer().startSpan(
        spanName(init.operation, init.requestModel),
        { kind: SpanKind.CLIENT, startTime: init.startMs, attributes },
        parent,
      );
      const sctx = span.spanContext();
      return { span, context: trace.setSpan(parent, span), traceId: sctx.traceId, spanId: sctx.spanId };
    },
    within(handle, fn) {
      return context.with(handle.context, fn);
    },
    end(handle, record) {
      const { span } = handle;
      if (!span.isRecording()) {
        span.end(record.timing.endMs);
        return;
      }
      span.setAttributes(endAttributes(record, options.captureContent));
      if (record.outcome === 'error' || record.outcome === 'blocked') {
        span.setStatus({ code: SpanStatusCode.ERROR, message: record.errorType ?? record.outcome });
      }
      emitPhases(getTracer(), handle, record);
      span.end(record.timing.endMs);
    },
  };
}

function endAttributes(r: CallRecord, captureContent: boolean): Attributes {
  const a: Attributes = {};
  set(a, sc.GEN_AI_RESPONSE_MODEL, r.responseModel);
  set(a, sc.GEN_AI_RESPONSE_ID, r.responseId);
  if (r.finishReasons.length > 0) a[sc.GEN_AI_RESPONSE_FINISH_REASONS] = r.finishReasons;
  if (r.request.model === null && r.requestModel) set(a, sc.GEN_AI_REQUEST_MODEL, r.requestModel);
  if (r.usage) {
    a[sc.GEN_AI_USAGE_INPUT_TOKENS] = r.usage.inputTokens;
    a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = r.usage.outputTokens;
    a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = r.usage.cacheReadTokens;
    a[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = r.usage.cacheWriteTokens;
    a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = r.usage.reasoningTokens;
    a[sc.LLM_METER.usageSource] = r.usage.source;
  }
  if (r.timing.timeToFirstTokenMs !== null) {
    // Seconds, per the conventions.
    a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = r.timing.timeToFirstTokenMs / 1000;
    a[sc.LLM_METER.ttftMs] = r.timing.timeToFirstTokenMs;
  }
  const cost = r.cost;
  set(a, sc.GEN_AI_USAGE_COST, nanosToUsd(cost.totalNanos));
  a[sc.LLM_METER.unpriced] = cost.totalNanos === null;
  set(a, sc.LLM_METER.costInput, nanosToUsd(cost.inputNanos));
  set(a, sc.LLM_METER.costCacheRead, nanosToUsd(cost.cacheReadNanos));
  set(a, sc.LLM_METER.costCacheWrite, nanosToUsd(cost.cacheWriteNanos));
  set(a, sc.LLM_METER.costOutput, nanosToUsd(cost.outputNanos));
  set(a, sc.LLM_METER.costSource, cost.source);
  set(a, sc.LLM_METER.pricedAs, cost.pricedAs);
  a[sc.LLM_METER.outcome] = r.outcome;
  a[sc.LLM_METER.callId] = r.id;
  a[sc.LLM_METER.requestParsed] = r.request.parsed;
  if (r.request.toolCount) a[sc.LLM_METER.toolCount] = r.request.toolCount;
  if (r.toolCalls) a[sc.LLM_METER.toolCalls] = r.toolCalls;
  if (r.chunks) a[sc.LLM_METER.chunks] = r.chunks;
  set(a, ATTR_HTTP_RESPONSE_STATUS_CODE, r.httpStatus);
  if (r.errorType) {
    a[ATTR_ERROR_TYPE] = r.errorType;
    set(a, sc.LLM_METER.retryable, r.retryable);
    set(a, sc.LLM_METER.errorCode, r.errorCode);
  }
  set(a, sc.LLM_METER.retryAfterMs, r.retryAfterMs);
  if (r.rateLimit) {
    set(a, sc.LLM_METER.remainingRequests, r.rateLimit.remainingRequests);
    set(a, sc.LLM_METER.remainingTokens, r.rateLimit.remainingTokens);
    set(a, sc.LLM_METER.resetTokensMs, r.rateLimit.resetTokensMs);
  }
  const p = r.preflight;
  set(a, sc.LLM_METER.inputEstimate, p.inputTokensEstimate);
  set(a, sc.LLM_METER.projectedCost, nanosToUsd(p.projectedMaxCostNanos));
  set(a, sc.LLM_METER.contextWindow, p.contextWindow);
  set(a, sc.LLM_METER.contextExceeded, p.contextExceeded);
  const t = r.timing;
  set(a, sc.LLM_METER.generationMs, t.generationMs);
  set(a, sc.LLM_METER.tokensPerSecond, t.outputTokensPerSecond);
  set(a, sc.LLM_METER.serverProcessingMs, t.serverProcessingMs);
  setComponent(a, sc.LLM_METER.queueMs, sc.LLM_METER.queueSource, t.queue);
  setComponent(a, sc.LLM_METER.prefillMs, sc.LLM_METER.prefillSource, t.prefill);
  set(a, sc.LLM_METER.generationSource, t.generation?.source);
  const who = r.attribution;
  set(a, sc.LLM_METER.user, who.user);
  set(a, sc.LLM_METER.project, who.project);
  set(a, sc.LLM_METER.feature, who.feature);
  set(a, sc.LLM_METER.apiKeyHash, who.apiKeyHash);
  for (const [k, v] of Object.entries(who.tags)) a[sc.LLM_METER.tagPrefix + k] = v;
  if (captureContent && r.content?.output !== undefined) {
    a[sc.GEN_AI_OUTPUT_MESSAGES] = safeStringify([
      { role: 'assistant', parts: [{ type: 'text', content: r.content.output }] },
    ]);
  }
  return a;
}

function setComponent(a: Attributes, msKey: string, sourceKey: string, c: TimingComponent | null) {
  if (!c) return;
  a[msKey] = c.ms;
  a[sourceKey] = c.source;
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
