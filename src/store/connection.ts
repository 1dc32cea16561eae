/**
 * Opening a SQLite connection with the settings every llm-meter connection shares.
 */
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

export interface ConnectionOptions {
  /** How long a statement waits for another process's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number | undefined;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * WAL lets readers (the reporting server, another worker) run while a writer commits.
 * synchronous=NORMAL in WAL mode fsyncs only at checkpoints: a commit is a write() into the
 * WAL file, which the kernel keeps when the process is killed (kill -9, a crash, an OOM kill),
 * so a committed call survives any crash of the process. A power loss or kernel panic can lose
 * the last commits since the previous checkpoint; the database stays consistent either way.
 * https://www.sqlite.org/pragma.html#pragma_synchronous
 */
export function openConnection(path: string, options: ConnectionOptions = {}): SqliteDatabase {
  const db = new Database(path);
  try {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    setWal(db, busyTimeoutMs);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Switching to WAL needs a moment of exclusive access, and SQLite answers SQLITE_BUSY at once
 * (without the busy handler) when another process is opening the same new file: retry.
 */
function setWal(db: SqliteDatabase, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if (!isBusy(error) || Date.now() > deadline) throw error;
      sleepSync(Math.min(50, 2 ** attempt));
    }
  }
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
