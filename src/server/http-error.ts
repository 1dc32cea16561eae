import { hasKind, LlmMeterError, markKind } from '../errors/errors.js';

/**
 * Errors a route throws to answer with a 4xx. The body never carries a stack trace or SQL:
 * `{ error: { type, message, field? } }`.
 */

type HttpErrorType =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'misdirected'
  | 'not_found'
  | 'internal'
  | 'unavailable';

export class HttpError extends LlmMeterError {
  override name = 'HttpError' as const;
  constructor(
    readonly status: number,
    readonly type: HttpErrorType,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    markKind(this, 'HttpError');
  }

  toJSON(): { error: { type: HttpErrorType; message: string; field?: string } } {
    return {
      error: { type: this.type, message: this.message, ...(this.field ? { field: this.field } : {}) },
    };
  }
}

export function isHttpError(error: unknown): error is HttpError {
  return error instanceof HttpError || hasKind(error, 'HttpError');
}

export function invalidRequest(field: string, message: string): HttpError {
  return new HttpError(400, 'invalid_request', message, field);
}
