/**
 * The errors llm-meter itself throws. One hierarchy; every instance carries a brand under a
 * registered symbol, so that an error from another copy of the library (two versions in one
 * dependency tree) still matches isLlmMeterError(). A kind of error that callers tell apart
 * carries a brand of its own (markKind), which its subclasses inherit and its guard reads: an
 * error is never recognised by its `name`, which anything can claim.
 */
const BRAND = Symbol.for('llm-meter.error');

const kindKey = (kind: string) => Symbol.for(`llm-meter.error.${kind}`);

/** Brands `error` as one of `kind` (call it in the constructor of the class that names the kind). */
export function markKind(error: LlmMeterError, kind: string): void {
  Object.defineProperty(error, kindKey(kind), { value: true });
}

/** Whether `error` was branded `kind` by this or any other copy of the library. */
export function hasKind(error: unknown, kind: string): boolean {
  return isLlmMeterError(error) && (error as unknown as Record<symbol, unknown>)[kindKey(kind)] === true;
}

export class LlmMeterError extends Error {
  override name: string = 'LlmMeterError';
  declare readonly [BRAND]: true;
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** An option was invalid where it entered. The message names the option. */
export class InvalidOptionError extends LlmMeterError {
  override name = 'InvalidOptionError' as const;
}

/** `enforceContextWindow: true` refused a request locally; it was never sent. */
export class ContextWindowExceededError extends LlmMeterError {
  override name = 'ContextWindowExceededError' as const;
  constructor(
    readonly model: string,
    readonly inputTokens: number,
    readonly maxOutputTokens: number,
    readonly contextWindow: number,
  ) {
    super(contextWindowMessage(model, inputTokens, maxOutputTokens, contextWindow));
  }
}

/** Why a request cannot fit: the message of ContextWindowExceededError and of the meter's refusal. */
export function contextWindowMessage(
  model: string,
  inputTokens: number,
  maxOutputTokens: number,
  contextWindow: number,
): string {
  return (
    `Request to \`${model}\` needs ${inputTokens} input + ${maxOutputTokens} output tokens, ` +
    `over its context window of ${contextWindow} tokens; it was not sent.`
  );
}

export function isLlmMeterError(error: unknown): error is LlmMeterError {
  return (
    error instanceof LlmMeterError ||
    (typeof error === 'object' && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true)
  );
}
