/**
 * Errors the store raises to its owner (never to a metered caller: `write` swallows).
 * The guards read the brands of errors.ts, so errors from another copy of the library still match.
 */

import {
  hasKind,
  InvalidRecordError,
  isInvalidRecordError,
  LlmMeterError,
  markKind,
} from '../errors/errors.js';

export { InvalidRecordError, isInvalidRecordError };

export class StoreError extends LlmMeterError {
  override name: string = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    markKind(this, 'StoreError');
  }
}

/** The database was migrated by a newer llm-meter; opening it could corrupt it. */
export class SchemaTooNewError extends StoreError {
  override name = 'SchemaTooNewError' as const;
  constructor(
    readonly databaseVersion: number,
    readonly codeVersion: number,
  ) {
    super(
      `database schema version ${databaseVersion} is newer than this llm-meter (${codeVersion}); upgrade llm-meter`,
    );
    markKind(this, 'SchemaTooNewError');
  }
}

/** A migration file is misnamed, out of order, or does more than DDL. */
export class MigrationError extends StoreError {
  override name = 'MigrationError' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    markKind(this, 'MigrationError');
  }
}

/** A query the store cannot answer as asked (e.g. a cursor it did not issue). */
export class InvalidQueryError extends StoreError {
  override name = 'InvalidQueryError' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    markKind(this, 'InvalidQueryError');
  }
}

export function isStoreError(error: unknown): error is StoreError {
  return error instanceof StoreError || hasKind(error, 'StoreError');
}

export function isSchemaTooNewError(error: unknown): error is SchemaTooNewError {
  return error instanceof SchemaTooNewError || hasKind(error, 'SchemaTooNewError');
}

export function isMigrationError(error: unknown): error is MigrationError {
  return error instanceof MigrationError || hasKind(error, 'MigrationError');
}

export function isInvalidQueryError(error: unknown): error is InvalidQueryError {
  return error instanceof InvalidQueryError || hasKind(error, 'InvalidQueryError');
}
