/**
 * The errors llm-meter itself throws. One hierarchy; every instance carries a brand under a
 * registered symbol, so that an error from another copy of the library (two versions in one
 * dependency tree) still matches isLlmMeterError().
 */
const BRAND = Symbol.for('llm-meter.error');

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
