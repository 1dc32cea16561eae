/**
 * Which SQLite failures are the database's and which are a record's, for both writers on the
 * file (the usage store and the budget ledger). https://www.sqlite.org/rescode.html
 */
import { isInvalidRecordError } from '../errors/errors.js';

/** SQLite codes that blame the record (exported for the writer worker, which runs no TS). */
export const RECORD_ERROR = /^SQLITE_(CONSTRAINT|MISMATCH$|TOOBIG$)/;

/**
 * The record itself is at fault (a value SQLite refuses, a budget deleted meanwhile): discard
 * it, keep the others.
 */
export function isRecordError(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  if (isInvalidRecordError(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RECORD_ERROR.test(code);
}

/** The database or its file failed, not a record: the work stays queued and is retried whole. */
export const ENVIRONMENT_ERROR =
  /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|NOMEM|CORRUPT|NOTADB|PERM|INTERRUPT|PROTOCOL|AUTH|NOLFS|SCHEMA)/;

export function isEnvironmentError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && ENVIRONMENT_ERROR.test(code);
}

/** A short code for `lastError`: SQLite's own, else the error's class name. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return (error as { name?: unknown } | null)?.name === undefined ? 'Error' : String((error as Error).name);
}
