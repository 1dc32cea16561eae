/**
 * The errors llm-meter itself throws. One hierarchy; guards compare `name` too so that an error
 * from another copy of the library still matches.
 */
export class LlmMeterError extends Error {
  override name: string = 'LlmMeterError';
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
    super(
      `Request to \`${model}\` needs ${inputTokens} input + ${maxOutputTokens} output tokens, ` +
        `over its context window of ${contextWindow} tokens; it was not sent.`,
    );
  }
}

export function isLlmMeterError(error: unknown): error is LlmMeterError {
  return (
    error instanceof LlmMeterError ||
    (error instanceof Error &&
      ['LlmMeterError', 'InvalidOptionError', 'ContextWindowExceededError'].includes(error.name))
  );
}
