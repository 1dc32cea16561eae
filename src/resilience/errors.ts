import { hasKind, LlmMeterError, markKind } from '../errors/errors.js';

/**
 * A circuit breaker is open for this provider and model: the call was not sent. `retryAfterMs`
 * says when the breaker lets a probe through.
 */
export class CircuitOpenError extends LlmMeterError {
  override name = 'CircuitOpenError' as const;
  constructor(
    readonly key: string,
    readonly retryAfterMs: number,
  ) {
    super(
      `Circuit open for ${key}: the provider failed repeatedly; the call was not sent. ` +
        `Next probe in ${Math.ceil(retryAfterMs)} ms.`,
    );
    markKind(this, 'CircuitOpenError');
  }
}

export function isCircuitOpenError(error: unknown): error is CircuitOpenError {
  return error instanceof CircuitOpenError || hasKind(error, 'CircuitOpenError');
}
