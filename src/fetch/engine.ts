import type { ProviderAdapter } from '../providers/types.js';
import type { Attribution, PreflightInfo } from '../record.js';
import type { SpanSink } from '../telemetry/spans.js';
import type { CallEnd, PreparedCall } from './call.js';
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

/** What the wrapper needs from the meter. */
export interface Engine {
  adapters: readonly ProviderAdapter[];
  maxRequestBodyBytes: number;
  maxResponseBodyBytes: number;
  streamUsage: boolean;
  /** Records carry a salted hash of the API key: the request's headers are copied at the call. */
  hashesApiKeys: boolean;
  now(): number;
  newId(): string;
  attribution(): Attribution;
  spans: SpanSink;
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
  end(end: CallEnd): void;
  /** A failure the wrapper swallowed: counted and logged, never thrown. */
  report(place: WrapperPlace, error: unknown): void;
}
