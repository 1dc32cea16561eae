/**
 * One metered call from begin to end: its working state (private to src/fetch/), the prepared
 * call the gates read, and the frozen end the assembler reads.
 */
import {
  type Detection,
  emptyParsed,
  type HeaderFacts,
  type ParsedResponse,
  type ProviderError,
  type ResponseParser,
} from '../providers/types.js';
import type { Attribution, PreflightInfo, RequestInfo } from '../record.js';
import { type CallEnd, type CallSpan, type Ending, NO_ESTIMATE, type PreparedCall } from './call.js';
import type { Engine } from './engine.js';
import type { Refusal } from './refuse.js';
import type { FetchInput, Target } from './request.js';

/** A call about to be sent, as gates see it. Its only state is the memoised estimate. */
class Prepared implements PreparedCall {
  #engine: Engine;
  #estimate: Promise<PreflightInfo> | null = null;
  #figures: PreflightInfo = NO_ESTIMATE;

  constructor(
    engine: Engine,
    readonly id: string,
    readonly detection: Detection,
    readonly target: Target,
    readonly info: RequestInfo,
    readonly body: Record<string, unknown> | null,
    readonly unparsedReason: string | null,
    readonly attribution: Attribution,
  ) {
    this.#engine = engine;
  }

  /** The estimate once it has settled (what the record carries); no figures until then. */
  get figures(): PreflightInfo {
    return this.#figures;
  }

  get model(): string | null {
    return this.info.model;
  }

  estimate(): Promise<PreflightInfo> {
    if (this.#estimate === null) {
      let pending: Promise<PreflightInfo>;
      try {
        pending = this.#engine.estimate(this);
      } catch (error) {
        pending = Promise.reject(error);
      }
      this.#estimate = pending.then((figures) => {
        this.#figures = figures;
        return figures;
      });
    }
    return this.#estimate;
  }
}

/** Everything known about one call while it runs. Never leaves src/fetch/. */
export interface CallState {
  readonly call: Prepared;
  readonly input: FetchInput;
  readonly init: RequestInit | undefined;
  readonly startMs: number;
  readonly parser: ResponseParser;
  span: CallSpan | null;
  headersMs: number | null;
  firstTokenMs: number | null;
  lastTokenMs: number | null;
  status: number | null;
  facts: HeaderFacts | null;
  /** Stream events seen. */
  chunks: number;
  /** See CallEnd.unreadBytes. */
  unreadBytes: number;
  /** The parsed body of an error response (status >= 400), or its text. */
  errorBody: unknown;
  /** See CallEnd.guard. */
  guard: string | null;
}

/**
 * A metered call begins: counted by the engine until `endCall`. Null when the adapter cannot
 * make a parser for it; such a call is not metered.
 */
export function beginCall(
  engine: Engine,
  detection: Detection,
  target: Target,
  info: RequestInfo,
  body: Record<string, unknown> | null,
  unparsedReason: string | null,
  input: FetchInput,
  init: RequestInit | undefined,
): CallState | null {
  let parser: ResponseParser;
  try {
    parser = detection.adapter.createParser(detection, info);
  } catch (error) {
    engine.report('adapter.createParser', error);
    return null;
  }
  engine.begin();
  const call = new Prepared(
    engine,
    engine.newId(),
    detection,
    target,
    info,
    body,
    unparsedReason,
    engine.attribution(),
  );
  return {
    call,
    input,
    init,
    startMs: engine.now(),
    parser,
    span: null,
    headersMs: null,
    firstTokenMs: null,
    lastTokenMs: null,
    status: null,
    facts: null,
    chunks: 0,
    unreadBytes: 0,
    errorBody: null,
    guard: null,
  };
}

/** The call has ended: its end is built and frozen once, and handed to the engine. */
export function endCall(
  engine: Engine,
  state: CallState,
  ending: Ending,
  error: unknown,
  callerAborted: boolean,
  refusal: Refusal | null = null,
): void {
  const endMs = engine.now();
  const { call } = state;
  let parsed: ParsedResponse;
  try {
    parsed = state.parser.result();
  } catch (e) {
    engine.report('adapter.parser', e);
    parsed = emptyParsed();
  }
  let providerError: ProviderError | null = null;
  if (ending !== 'refused' && state.status !== null && state.status >= 400) {
    try {
      providerError = call.detection.adapter.parseError(state.errorBody);
    } catch (e) {
      engine.report('adapter.parseError', e);
      providerError = { code: null, type: null, message: null };
    }
  }
  const end: CallEnd = Object.freeze({
    id: call.id,
    detection: call.detection,
    target: call.target,
    info: call.info,
    body: call.body,
    attribution: call.attribution,
    span: state.span,
    preflight: call.figures,
    startMs: state.startMs,
    headersMs: state.headersMs,
    firstTokenMs: state.firstTokenMs,
    lastTokenMs: state.lastTokenMs,
    endMs,
    status: state.status,
    facts: state.facts,
    parsed,
    chunks: state.chunks,
    unreadBytes: state.unreadBytes,
    ending,
    error,
    providerError,
    refusal,
    guard: state.guard,
    callerAborted,
  });
  try {
    engine.end(end);
  } catch (e) {
    // end() never throws by contract; this is the last fence.
    engine.report('end', e);
  }
}

/** Whether the caller's own abort ended the call (not its timeout, not the network). */
export function callerAborted(input: FetchInput, init: RequestInit | undefined, error: unknown): boolean {
  const signal =
    init?.signal ?? (typeof input === 'object' && !(input instanceof URL) ? input.signal : undefined);
  // A caller's own timeout (AbortSignal.timeout) is a timeout error, not a cancellation.
  if (signal?.aborted) return (signal.reason as { name?: unknown } | undefined)?.name !== 'TimeoutError';
  return error instanceof Error && error.name === 'AbortError' && !signal;
}

/**
 * The official SDKs enforce their `timeout` option with an abort that carries no reason, which
 * reads like the caller's own cancellation. They announce the timeout in whole seconds
 * (`X-Stainless-Timeout`: anthropic-sdk-typescript always, openai-node only for a per-request
 * `timeout`): an abort at or after it is the SDK timing out. The SDK's timer starts a little
 * before this call's clock (and timers may fire a millisecond early), hence the slack.
 * Timeouts under a second announce 0 and stay indistinguishable from a cancellation.
 */
const SDK_TIMER_SLACK_MS = 250;

export function clientTimedOut(state: CallState, now: number, error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'AbortError') return false;
  const seconds = Number(state.call.target.headers.get('x-stainless-timeout'));
  return (
    Number.isFinite(seconds) && seconds >= 1 && now - state.startMs >= seconds * 1000 - SDK_TIMER_SLACK_MS
  );
}
