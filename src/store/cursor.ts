/**
 * Events cursors: opaque to clients, a position in (time, seq) order to the store. `seq` is the
 * row's insertion number, fixed for the row's life, so pages never repeat or skip a row.
 */

export interface CursorPosition {
  timeMs: number;
  seq: number;
}

/** A time before 1970 is negative: rows an older version wrote may have one. */
const FORMAT = /^v1:(-?\d{1,16}):(\d{1,16})$/;

export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(`v1:${position.timeMs}:${position.seq}`).toString('base64url');
}

/** null when the text is not a cursor this store issued. */
export function decodeCursor(cursor: string): CursorPosition | null {
  if (cursor.length > 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const match = FORMAT.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) return null;
  const timeMs = Number(match[1]);
  const seq = Number(match[2]);
  return Number.isSafeInteger(timeMs) && Number.isSafeInteger(seq) ? { timeMs, seq } : null;
}
