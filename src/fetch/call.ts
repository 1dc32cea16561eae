/**
 * The two values a metered call hands out of the wrapper: a gate reads a `PreparedCall` before
 * the call is sent, the assembler reads a `CallEnd` once it has ended. Neither is the wrapper's
 * working state (./lifecycle.ts), and neither can write into it.
 */
import type { Detection, HeaderFacts, ParsedResponse, ProviderError } from '../providers/types.js';
import type { Attribution, PreflightInfo, RequestInfo } from '../record.js';
import type { Refusal } from './refuse.js';
import type { Target } from './request.js';

/** A call's span as the wrapper sees it: the ids its record carries (see CallSpans in ./engine.ts). */
export interface CallSpan {
  readonly traceId: string;
  readonly spanId: string;
}

/** What a gate knows of a call about to be sent. */
export interface PreparedCall {
  readonly id: string;
  /** Provider, operation and adapter. */
  readonly detection: Detection;
  /** `info.model`. */
  readonly model: string | null;
  readonly target: Target;
  readonly info: Readonly<RequestInfo>;
  /** The parsed request body (for token estimates), or null when it could not be read. */
  readonly body: Readonly<Record<string, unknown>> | null;
  /** Why the body was not parsed (`too_large`, `stream`, `not_json`...), or null when it was. */
  readonly unparsedReason: string | null;
  readonly attribution: Readonly<Attribution>;
  /**
   * The pre-flight figures (input token estimate, projected maximum cost, context window),
   * counted once per call however many gates ask; the call's record carries them.
   */
  estimate(): Promise<PreflightInfo>;
}

/** How the exchange ended, as the wrapper saw it. */
export type Ending =
  /** The body was read to its end (or there was none). */
  | 'done'
  /** The body failed while being read. */
  | 'error'
  /** The caller cancelled the body. */
  | 'cancel'
  /** The upstream fetch threw: no response. */
  | 'thrown'
  /** A gate refused it: never sent (`refusal` says which). */
  | 'refused';

/**
 * A call that has ended: everything the assembler reads, frozen once, when the call ends. `S`:
 * the span type of the meter's span port, handed back to it as it was started.
 */
export interface CallEnd<S extends CallSpan = CallSpan> {
  readonly id: string;
  readonly detection: Detection;
  readonly target: Target;
  readonly info: RequestInfo;
  /** The parsed request body (for late token estimates and `captureContent`). */
  readonly body: Record<string, unknown> | null;
  readonly attribution: Attribution;
  readonly span: S | null;
  /** The pre-flight figures, when a gate asked for them; all null otherwise. */
  readonly preflight: PreflightInfo;
  readonly startMs: number;
  readonly headersMs: number | null;
  readonly firstTokenMs: number | null;
  readonly lastTokenMs: number | null;
  readonly endMs: number;
  readonly status: number | null;
  readonly facts: HeaderFacts | null;
  /** What the adapter's parser made of the response. */
  readonly parsed: ParsedResponse;
  /** Stream events seen. */
  readonly chunks: number;
  /**
   * Response bytes too large to parse (an event over the parser's cap, a JSON body over
   * `maxResponseBodyBytes`): what they said is unknown, so usage is estimated.
   */
  readonly unreadBytes: number;
  readonly ending: Ending;
  /** What was thrown (upstream fetch or body), or null. */
  readonly error: unknown;
  /** The provider's error from an error response's body (status >= 400), or null. */
  readonly providerError: ProviderError | null;
  /** The gate's refusal when `ending` is `refused`, else null. */
  readonly refusal: Refusal | null;
  /**
   * The llm-meter guard that answered instead of the provider (a rate limiter, circuit breaker
   * or tool-round cap beneath this meter, or in an llm-meter gateway in front of it), or null.
   */
  readonly guard: string | null;
  readonly callerAborted: boolean;
}

/** The figures of a call nobody estimated. Shared: records only read it. */
export const NO_ESTIMATE: PreflightInfo = Object.freeze({
  inputTokensEstimate: null,
  projectedMaxCostNanos: null,
  contextWindow: null,
  contextExceeded: null,
});
