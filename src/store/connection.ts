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
/** How long a write waits for the lock while the database is known to be unavailable. */
export const PROBE_BUSY_TIMEOUT_MS = 50;

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

/**
 * Writes on a connection whose writes are failing. Waiting out the busy timeout blocks the
 * host's event loop (better-sqlite3 is synchronous), so once a write has failed (after waiting
 * the whole timeout for a lock another process holds, or on a full disk), the next attempts
 * only probe, with a short timeout, until one succeeds: a database locked for minutes makes
 * the host wait once, not on every call or retry (DESIGN.md: never delay a chunk).
 */
export interface BusyProbe {
  /** Runs one write; its failure switches to probing, its success back to the full timeout. */
  run<T>(write: () => T): T;
  failed(): void;
  succeeded(): void;
}

export function createBusyProbe(db: SqliteDatabase, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS): BusyProbe {
  const full = Math.max(0, Math.floor(busyTimeoutMs));
  const probe = Math.min(full, PROBE_BUSY_TIMEOUT_MS);
  let probing = false;
  const set = (ms: number) => {
    try {
      if (db.open) db.pragma(`busy_timeout = ${ms}`);
    } catch {
      // A setting, not a write: nothing to do if even this fails.
    }
  };
  const failed = () => {
    if (probing) return;
    probing = true;
    set(probe);
  };
  const succeeded = () => {
    if (!probing) return;
    probing = false;
    set(full);
  };
  return {
    run(write) {
      let result: ReturnType<typeof write>;
      try {
        result = write();
      } catch (error) {
        failed();
        throw error;
      }
      succeeded();
      return result;
    },
    failed,
    succeeded,
  };
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
