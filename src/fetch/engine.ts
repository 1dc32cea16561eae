import type { ProviderAdapter } from '../providers/types.js';
import type { Attribution, Operation, PreflightInfo, RequestInfo } from '../record.js';
import type { CallEnd, CallSpan, PreparedCall } from './call.js';
import type { Refusal } from './refuse.js';

/**
 * Where the wrapper fails open: each is counted (`meter.stats().sinkErrorsBy`) and the call goes
 * on as if that step had found nothing. `adapter.*` are a provider adapter's methods.
 */
export const WRAPPER_PLACES = [
  'detect',
  'readBody',
  'adapter.parseRequest',
  'adapter.createParser',
  'spans',
  'gates',
  'adapter.amendRequest',
  'adapter.errorBody',
  'adapter.readHeaders',
  'adapter.bodyFormat',
  'adapter.parser',
  'adapter.parseError',
  'filter',
  'observer',
  'end',
] as const;

export type WrapperPlace = (typeof WRAPPER_PLACES)[number];

/** What the wrapper says of a call when its span starts. */
interface CallSpanStart {
  operation: Operation;
  provider: string;
  requestModel: string | null;
  request: RequestInfo;
  serverAddress: string | null;
  serverPort: number | null;
  startMs: number;
  /** The withRetry group of this attempt: its span links to the group's previous attempt. */
  retryGroup?: string | undefined;
  /** The parsed request body (the span shows the prompt only when content capture is on). */
  body?: Record<string, unknown> | null;
}

/**
 * The span port: all the wrapper asks of tracing. The meter passes its telemetry span sink,
 * which has this shape; the wrapper knows nothing of the sinks. `S` is the sink's own span type,
 * handed back in `CallEnd.span`.
 */
export interface CallSpans<S extends CallSpan = CallSpan> {
  start(init: CallSpanStart): S;
  /** Run `fn` with the call's span active, so the upstream HTTP request nests under it. */
  within<T>(span: S, fn: () => T): T;
}

/** What the wrapper needs from the meter. `S`: the span type of its span port. */
export interface Engine<S extends CallSpan = CallSpan> {
  adapters: readonly ProviderAdapter[];
  maxRequestBodyBytes: number;
  maxResponseBodyBytes: number;
  streamUsage: boolean;
  /** Records carry a salted hash of the API key: the request's headers are copied at the call. */
  hashesApiKeys: boolean;
  now(): number;
  newId(): string;
  attribution(): Attribution;
  spans: CallSpans<S>;
  /** A metered call begins: counted, and in flight until its `end`. */
  begin(): void;
  /** The pre-flight figures of a call; `PreparedCall.estimate` asks once per call. */
  estimate(call: PreparedCall): Promise<PreflightInfo>;
  /**
   * Runs before the call is sent: a refusal to answer the caller with instead of sending, or
   * null to send. Answers synchronously when nothing applies (no promise, no tick).
   */
  gate(call: PreparedCall): Promise<Refusal | null> | Refusal | null;
  /** Exactly once per begun call, when it has ended. Never throws. */
  end(end: CallEnd<S>): void;
  /** A failure the wrapper swallowed: counted and logged, never thrown. */
  report(place: WrapperPlace, error: unknown): void;
}
