/**
 * Opening a SQLite connection with the settings every llm-meter connection shares.
 */
import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

export interface ConnectionOptions {
  /** How long a statement waits for another process's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number | undefined;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
/** How long a retryable write waits for the lock (see LockWaits). */
export const BRIEF_BUSY_TIMEOUT_MS = 50;

/**
 * WAL lets readers (the reporting server, another worker) run while a writer commits.
 * synchronous=NORMAL in WAL mode fsyncs only at checkpoints: a commit is a write() into the
 * WAL file, which the kernel keeps when the process is killed (kill -9, a crash, an OOM kill),
 * so a committed call survives any crash of the process. A power loss or kernel panic can lose
 * the last commits since the previous checkpoint; the database stays consistent either way.
 * https://www.sqlite.org/pragma.html#pragma_synchronous
 */
export function openConnection(path: string, options: ConnectionOptions = {}): SqliteDatabase {
  createPrivately(path);
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
 * The file holds webhook secrets: a new one is created readable and writable by its owner only
 * (0600), before SQLite opens it. SQLite gives the -wal, -shm and journal files the mode of the
 * database file, so they follow. An existing file keeps its mode: it may be shared on purpose
 * (a group that runs the reports). Opening with O_CREAT but without O_TRUNC or O_EXCL is a
 * no-op for a file that exists, including one another process creates at the same moment.
 */
function createPrivately(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  try {
    closeSync(openSync(path, 'a', 0o600));
  } catch {
    // Missing folder, read-only file or file system: SQLite's own open reports it.
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
 * How long a write waits for another process's lock. better-sqlite3 is synchronous, so a
 * write waiting out SQLite's busy handler blocks the host's event loop, and with it every
 * caller's response and stream (DESIGN.md: never delay a chunk). Two kinds of write:
 *
 * - brief: work that can be retried later (usage commits, budget settles, the webhook outbox).
 *   It waits at most BRIEF_BUSY_TIMEOUT_MS; past that it fails, and its owner keeps the work
 *   queued and retries with backoff. Another llm-meter process holds the write lock for well
 *   under a millisecond per commit, so a brief wait fails only when the lock is held
 *   abnormally long (an exclusive lock, a stuck process, a long report written by hand).
 * - patient: work whose caller is waiting for its answer (a blocking budget's reservation, a
 *   budget edit, a flush at shutdown). It waits the full busy timeout, except while an outage
 *   is known (the last write of either kind failed): then it only probes with the brief wait,
 *   so a database locked for minutes costs one full wait per outage, not one per call.
 */
export interface LockWaits {
  brief<T>(write: () => T): T;
  patient<T>(write: () => T): T;
  /** The full busy timeout, outage or not: the last attempt at shutdown, off every caller's path. */
  full<T>(write: () => T): T;
}

export function createLockWaits(db: SqliteDatabase, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS): LockWaits {
  const full = Math.max(0, Math.floor(busyTimeoutMs));
  const brief = Math.min(full, BRIEF_BUSY_TIMEOUT_MS);
  let current = full;
  let outage = false;
  const run = <T>(ms: number, write: () => T): T => {
    if (ms !== current && db.open) {
      try {
        db.pragma(`busy_timeout = ${ms}`);
        current = ms;
      } catch {
        // A setting, not a write: the write below reports whatever is wrong.
      }
    }
    let result: T;
    try {
      result = write();
    } catch (error) {
      outage = true;
      throw error;
    }
    outage = false;
    return result;
  };
  return {
    brief: (write) => run(brief, write),
    patient: (write) => run(outage ? brief : full, write),
    full: (write) => run(full, write),
  };
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
