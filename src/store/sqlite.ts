/**
 * The embedded usage store: one SQLite file (or ':memory:'), shared safely by several processes.
 *
 * Durability, chosen with `durability` (README, "Choices, and why"):
 *
 * - 'journal' (the default for a file): write() builds the row and appends it to this process's
 *   journal with one synchronous write(2) (journal.ts) before it returns, then queues it; a
 *   writer thread with its own connection commits the queue a batch at a time, rows and rollups
 *   in one transaction (writer.ts, writer-worker.ts). A completed call is in the page cache when
 *   write() returns, so it survives a kill -9 of the process, as a WAL commit with
 *   synchronous=NORMAL does (connection.ts); neither survives a power loss. Whatever a dead
 *   process journaled and did not commit is replayed by the next store that opens the file.
 *   Measured by bench/store.mjs (--only=durability, a shared 2-core VM): ~12-25 µs of the
 *   caller's event loop per write, against ~130-250 µs for an on-loop commit of one row.
 * - 'commit': write() queues; a microtask commits everything written during the tick in one
 *   BEGIN IMMEDIATE transaction on the caller's event loop, so by the time the code that completed
 *   a call does its next I/O the row is committed (in the WAL). Whatever completes in one callback
 *   shares a commit. The choice for a caller who wants the commit itself before it goes on.
 * - 'async': the writer thread without the journal. A kill -9 loses what was written and not
 *   yet committed: normally the last few milliseconds of calls (batches gather for 2 ms, then
 *   wait for the thread; bench/store.mjs measures write-to-commit), during an outage
 *   everything pending.
 *
 * ':memory:' cannot be shared with another thread: it always commits as 'commit'. If the writer
 * thread cannot start or stops, the store reports it (`failed`, `lastError`) and goes on as
 * 'commit', with what the thread had not committed. Whatever the mode, a file store runs the
 * writer thread: it replays dead processes' journals and checkpoints the WAL (the only fsyncs),
 * so no commit on the caller's event loop ever runs a checkpoint.
 *
 * Failures (SQLITE_BUSY past the busy timeout, disk full, a read-only file) never reach the
 * caller: the batch stays queued (at most `maxPending` records, oldest dropped first and
 * counted), the failure is counted, and the commit is retried with backoff; while backing off,
 * writes only queue (src/common/write-behind.ts, which the budgets' spend shares; the writer
 * thread does the same). Commits on the caller's event loop wait at most 50 ms for another
 * process's lock (connection.ts, LockWaits.brief); the writer thread, on nobody's path, waits the
 * full busy timeout (then, while the outage lasts, probes briefly), as flush() and close() do.
 *
 * One record never holds back the others. Its figures are bounded before they are written
 * (row.ts; counted as `clamped`), and a record whose row SQLite refuses is discarded (counted
 * as `invalid`). Should any statement of a batch still fail for a reason that is not the
 * database's (not busy, full, read-only, I/O...), the batch is written again one record at a
 * time, each in its own savepoint: the record that fails is discarded and counted, the rest
 * commit. Retrying such a batch as a whole would fail the same way forever.
 */
import { resolve } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { HOUR_MS } from '../common/buckets.js';
import { type CommitMode, createWriteBehind } from '../common/write-behind.js';
import { InvalidOptionError } from '../errors/errors.js';
import type { CallRecord } from '../record.js';
import { registerBucketFunctions } from './buckets.js';
import {
  createLockWaits,
  DEFAULT_BUSY_TIMEOUT_MS,
  type LockWaits,
  openConnection,
  type SqliteDatabase,
} from './connection.js';
import { encodeCursor } from './cursor.js';
import { InvalidQueryError, StoreError } from './errors.js';
import { eventsSql, MAX_EVENTS_LIMIT, MAX_PAGE_BYTES, rowWeight } from './events.js';
import { registerHistogramFunctions } from './histogram.js';
import { journalDir, openJournal } from './journal.js';
import { migrate } from './migrate.js';
import { createRollupBatch, ROLLUP_TABLES, type RollupBatch, upsertSql } from './rollup.js';
import {
  INSERT_USAGE_SQL,
  rowFromValues,
  rowValues,
  toUsageEvent,
  toUsageRow,
  type UsageRow,
} from './row.js';
import { errorCode, isEnvironmentError, isRecordError } from './sqlite-errors.js';
import { type SqlPart, summarize } from './summary.js';
import { timeseries } from './timeseries.js';
import type { EventsPage, EventsQuery, StoreStats, UsageEvent, UsageStore } from './types.js';
import { createWorkerWriter, type WorkerWriter } from './writer.js';
import { startWriterWorker, type WriterWorker } from './writer-worker.js';

/** How a completed call is made durable: see the header of this file. */
export type Durability = 'journal' | 'commit' | 'async';
export const DURABILITIES: readonly Durability[] = ['journal', 'commit', 'async'];

export interface SqliteStoreOptions {
  /** Database file; ':memory:' for a private in-memory database. */
  path: string;
  /**
   * 'journal' (default): journaled on the caller's thread, committed by a writer thread;
   * 'commit': committed on the caller's event loop before its next I/O; 'async': committed by
   * the writer thread, not journaled. ':memory:' is always 'commit'.
   */
  durability?: Durability | undefined;
  /**
   * How long the writer thread, flush() and close() wait for another process's write lock.
   * Default 5000. Commits on the event loop ('commit') wait at most 50 ms and are retried later.
   */
  busyTimeoutMs?: number | undefined;
  now?: (() => number) | undefined;
  /** Records kept while commits fail; beyond it the oldest are dropped. Default 100 000. */
  maxPending?: number | undefined;
  /** How often the writer thread checkpoints the WAL into the database file. Default 1000. */
  checkpointIntervalMs?: number | undefined;
  /** Most records per transaction. Default 10 000. */
  maxBatch?: number | undefined;
  /**
   * @internal For bench/store.mjs only, with 'commit': 'immediate' commits with setImmediate,
   * which batches more but gives up durability before the caller's next I/O. Default 'microtask'.
   */
  commitScheduling?: 'microtask' | 'immediate' | undefined;
  /** Diagnostics: every failed commit or refused record. Must not throw (it is guarded anyway). */
  onError?: ((error: unknown) => void) | undefined;
}

const PRUNE_CHUNK = 5_000;
const DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;
const STATEMENT_CACHE_SIZE = 64;

/** What one transaction did with its records. */
interface Tally {
  inserted: number;
  duplicates: number;
  refused: unknown[];
  /** Ids of inserted records with clamped figures, and which columns. */
  clamped: Array<{ id: string; columns: string[] }>;
}

const newTally = (): Tally => ({ inserted: 0, duplicates: 0, refused: [], clamped: [] });

/** A row built before its commit: what a writer thread that stopped hands back. */
class Built {
  constructor(
    readonly values: unknown[],
    readonly clamped: string[],
  ) {}
}

export function openSqliteStore(options: SqliteStoreOptions): UsageStore {
  if (options.durability !== undefined && !DURABILITIES.includes(options.durability)) {
    throw new InvalidOptionError("Expected `durability` to be 'journal', 'commit' or 'async'.");
  }
  const now = options.now ?? Date.now;
  const maxBatch = options.maxBatch ?? 10_000;
  const maxPending = options.maxPending ?? 100_000;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const db: SqliteDatabase = openConnection(options.path, { busyTimeoutMs });
  try {
    migrate(db);
    registerHistogramFunctions(db);
    registerBucketFunctions(db);
  } catch (error) {
    db.close();
    throw error;
  }

  const insert = db.prepare(INSERT_USAGE_SQL);
  const upserts = new Map(ROLLUP_TABLES.map((table) => [table.name, db.prepare(upsertSql(table))]));
  const readWatermark = db.prepare("SELECT value FROM store_meta WHERE key = 'pruned_before_ms'").pluck();
  const raiseWatermark = db.prepare(
    "INSERT INTO store_meta (key, value) VALUES ('pruned_before_ms', ?) " +
      'ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)',
  );
  const pruneChunk = db.prepare(
    'DELETE FROM usage WHERE seq IN (SELECT seq FROM usage WHERE time_ms < ? ORDER BY time_ms LIMIT ?)',
  );
  const select1 = db.prepare('SELECT 1').pluck();

  const waits = createLockWaits(db, busyTimeoutMs);
  const counters = { written: 0, duplicates: 0, invalid: 0, clamped: 0 };
  let lastError: StoreStats['lastError'] = null;
  let closed = false;

  const report = (error: unknown) => {
    lastError = { code: errorCode(error), message: (error as Error)?.message ?? String(error), atMs: now() };
    try {
      options.onError?.(error);
    } catch {
      // A diagnostics hook must not break the store.
    }
  };

  /** Insert one record's row and add it to `rollup`; a record SQLite refuses is tallied. */
  const insertRecord = (record: CallRecord | Built, rollup: RollupBatch, tally: Tally) => {
    let clamped: string[] = [];
    let row: UsageRow;
    try {
      let values: unknown[];
      if (record instanceof Built) {
        values = record.values;
        row = rowFromValues(values);
        clamped = record.clamped;
      } else {
        row = toUsageRow(record, clamped);
        values = rowValues(row);
      }
      // Positional parameters: a third cheaper to bind than 61 named ones.
      if (insert.run(values).changes === 0) {
        tally.duplicates++;
        return;
      }
    } catch (error) {
      if (!isRecordError(error)) throw error;
      tally.refused.push(error);
      return;
    }
    tally.inserted++;
    if (clamped.length > 0) tally.clamped.push({ id: row.id as string, columns: clamped });
    rollup.add(row);
  };

  const upsertRollups = (rollup: RollupBatch) => {
    for (const { table, values } of rollup.params()) upserts.get(table.name)!.run(values);
  };

  /** The usual commit: the rows, then one upsert per rollup group of the whole batch. */
  const writeBatch = db.transaction((batch: readonly (CallRecord | Built)[]) => {
    const tally = newTally();
    const rollup = createRollupBatch();
    for (const record of batch) insertRecord(record, rollup, tally);
    upsertRollups(rollup);
    return tally;
  });

  /** One record and its rollups; called inside writeEach, so it runs in a savepoint. */
  const writeAlone = db.transaction((record: CallRecord | Built) => {
    const tally = newTally();
    const rollup = createRollupBatch();
    insertRecord(record, rollup, tally);
    upsertRollups(rollup);
    return tally;
  });

  /** After a batch failed for one of its records: each record alone, the failing ones discarded. */
  const writeEach = db.transaction((batch: readonly (CallRecord | Built)[]) => {
    const tally = newTally();
    for (const record of batch) {
      try {
        const one = writeAlone(record);
        tally.inserted += one.inserted;
        tally.duplicates += one.duplicates;
        tally.refused.push(...one.refused);
        tally.clamped.push(...one.clamped);
      } catch (error) {
        if (isEnvironmentError(error)) throw error;
        tally.refused.push(error);
      }
    }
    return tally;
  });

  const reportClamped = (clamped: Tally['clamped']) => {
    if (clamped.length === 0) return;
    counters.clamped += clamped.length;
    const columns = [...new Set(clamped.flatMap((c) => c.columns))].join(', ');
    report(
      new StoreError(
        `Stored ${clamped.length} usage record(s) with out-of-range figures clamped (${columns}); first: ${clamped[0]!.id}.`,
      ),
    );
  };

  /** How long a commit waits for another process's lock: briefly on the event loop. */
  const lockWait: Record<CommitMode, LockWaits['brief']> = {
    background: waits.brief,
    flush: waits.patient,
    close: waits.full,
  };

  /** One transaction for the batch; a record SQLite refuses is discarded alone (writeEach). */
  const commit = (batch: readonly (CallRecord | Built)[], mode: CommitMode) => {
    const wait = lockWait[mode];
    let result: Tally;
    try {
      result = wait(() => writeBatch.immediate(batch));
    } catch (error) {
      if (isEnvironmentError(error)) throw error;
      report(error);
      result = wait(() => writeEach.immediate(batch));
    }
    counters.written += result.inserted + result.duplicates;
    counters.duplicates += result.duplicates;
    counters.invalid += result.refused.length;
    for (const error of result.refused) report(error);
    reportClamped(result.clamped);
  };

  const pending = createWriteBehind<CallRecord | Built>({
    capacity: maxPending,
    maxBatch,
    start: options.commitScheduling === 'immediate' ? 'immediate' : 'microtask',
    commit,
    // writeEach already discards the records at fault: what still fails is the database's.
    isPermanent: (error) => !isEnvironmentError(error) && isRecordError(error),
    onError: (error) => report(error),
  });

  // The writer thread, and with it the path of 'journal' and 'async' writes.
  const file = !db.memory;
  let durability: Durability = file ? (options.durability ?? 'journal') : 'commit';
  const journalPath = file ? journalDir(resolve(options.path)) : null;
  const journal =
    durability === 'journal' && journalPath !== null
      ? openJournal(journalPath, { onError: report, now })
      : null;
  let writer: WorkerWriter | null = null;
  let stopping = false;
  let threadFailures = 0;

  /** The thread stopped on its own: report it, checkpoint here, commit what it held here. */
  function threadStopped(error: unknown): void {
    worker = null;
    if (stopping) return;
    threadFailures++;
    const why = error === undefined ? '' : `: ${(error as Error)?.message ?? String(error)}`;
    report(
      new StoreError(`The usage store's writer thread stopped${why}; commits run on the event loop.`, {
        cause: error,
      }),
    );
    if (db.open) db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
    durability = 'commit';
    for (const entry of writer?.abandon(new StoreError('The writer thread stopped.')) ?? []) {
      pending.push(new Built(JSON.parse(entry.line) as unknown[], entry.clamped?.columns ?? []));
    }
  }

  let worker: WriterWorker | null = null;
  if (file) {
    db.pragma('wal_autocheckpoint = 0');
    worker = startWriterWorker({
      path: resolve(options.path),
      busyTimeoutMs,
      checkpointIntervalMs: options.checkpointIntervalMs,
      journalDir: journalPath,
      onEvent: (event) => writer?.handle(event),
      onExit: threadStopped,
    });
    if (worker !== null && durability !== 'commit') {
      writer = createWorkerWriter({
        worker,
        journal,
        capacity: maxPending,
        maxBatch,
        counters,
        report,
        reportClamped,
      });
    }
  }

  const flushError = (error: unknown, records: number) =>
    new StoreError(
      `Could not commit ${records} usage records: ${(error as Error)?.message ?? String(error)}`,
      {
        cause: error,
      },
    );

  const statements = new Map<string, Statement>();
  const prepared = (sql: string): Statement => {
    let statement = statements.get(sql);
    if (!statement) {
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear();
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  const run = (part: SqlPart) =>
    prepared(part.sql).iterate(...part.params) as Iterable<Record<string, unknown>>;
  const assertOpen = () => {
    if (closed) throw new StoreError('The usage store is closed.');
  };
  const watermark = () => (readWatermark.get() as number | undefined) ?? 0;
  /**
   * A report of many groups reads the database in several passes (rank the groups, sum the
   * first ones, sum each bucket); one read transaction gives them all the same snapshot, so the
   * `other` rows are exactly the rest while other processes write.
   */
  const snapshot = <T>(read: () => T): T => (db.inTransaction ? read() : db.transaction(read).deferred());

  const eventsPage = (query: EventsQuery): EventsPage => {
    assertOpen();
    const { sql, params, limit } = eventsSql(query);
    const page: Array<Record<string, unknown>> = [];
    let weight = 0;
    let more = false;
    // Row by row: a page ends at `limit` events or MAX_PAGE_BYTES, whichever comes first.
    for (const row of prepared(sql).iterate(...params) as Iterable<Record<string, unknown>>) {
      const next = rowWeight(row);
      if (page.length === limit || (page.length > 0 && weight + next > MAX_PAGE_BYTES)) {
        more = true;
        break;
      }
      weight += next;
      page.push(row);
    }
    const last = page.at(-1);
    return {
      events: page.map(toUsageEvent),
      next_cursor:
        more && last ? encodeCursor({ timeMs: last['time_ms'] as number, seq: last['seq'] as number }) : null,
    };
  };

  const viaThread = () => writer !== null && durability !== 'commit';

  const stats = (): StoreStats => {
    const queued = pending.stats();
    const thread = writer?.stats() ?? { failed: 0, dropped: 0, pending: 0 };
    return {
      ...counters,
      invalid: counters.invalid + queued.invalid,
      failed: queued.failed + thread.failed + threadFailures,
      dropped: queued.dropped + thread.dropped,
      pending: queued.pending + thread.pending,
      lastError,
    };
  };

  return {
    write: (record) => (viaThread() ? writer!.write(record) : pending.push(record)),
    async flush() {
      try {
        for (;;) {
          try {
            if (viaThread()) await writer!.flush('flush');
            break;
          } catch (error) {
            // The thread stopped meanwhile: what it held is queued here now.
            if (viaThread()) throw error;
          }
        }
        await pending.flush();
      } catch (error) {
        throw flushError(error, stats().pending);
      }
    },
    async close() {
      if (closed) return;
      // The last attempt may wait the whole busy timeout: nothing is on the caller's path now.
      let error: unknown;
      let dropped = 0;
      if (viaThread()) {
        try {
          await writer!.flush('close');
        } catch (e) {
          if (viaThread()) error = e;
        }
        dropped += writer!.drop();
      }
      const last = await pending.close();
      error ??= last.error;
      dropped += last.dropped;
      closed = true;
      stopping = true;
      await worker?.stop();
      // What could not be committed stays in the journal: the next open replays it.
      const kept = journal?.close(dropped > 0) ?? 0;
      if (dropped > 0) {
        const where = kept > 0 ? `; they stay in ${journal!.dir} for the next open to commit` : '';
        report(new StoreError(`Dropped ${dropped} usage records at close: ${lastError?.message}${where}`));
      }
      try {
        db.pragma('optimize');
      } catch {
        // Only a planner hint.
      }
      db.close();
      if (error !== undefined) throw flushError(error, dropped);
    },
    async summary(query) {
      assertOpen();
      return snapshot(() => summarize(run, query, watermark()));
    },
    async events(query) {
      return eventsPage(query);
    },
    async *eventsIterator(query) {
      let cursor: string | undefined;
      do {
        const page = eventsPage({ ...query, limit: MAX_EVENTS_LIMIT, cursor });
        for (const event of page.events) yield event as UsageEvent;
        cursor = page.next_cursor ?? undefined;
      } while (cursor !== undefined);
    },
    async timeseries(query) {
      assertOpen();
      return snapshot(() => timeseries(run, query, watermark()));
    },
    async prune(olderThanMs) {
      assertOpen();
      if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
        throw new InvalidQueryError('olderThanMs', 'Expected `olderThanMs` to be a non-negative number.');
      }
      const cutoffMs = Math.floor((now() - olderThanMs) / HOUR_MS) * HOUR_MS;
      // The watermark goes first, so a report running meanwhile reads pruned hours from rollups.
      // An operator's command, waited for: the full busy timeout, like flush().
      waits.patient(() => raiseWatermark.run(cutoffMs));
      let deleted = 0;
      for (;;) {
        const changes = waits.patient(() =>
          db.transaction(() => pruneChunk.run(cutoffMs, PRUNE_CHUNK).changes).immediate(),
        );
        deleted += changes;
        if (changes < PRUNE_CHUNK) break;
        // Let writers (this process's and others') in between chunks.
        await new Promise<void>((resolve) => setImmediate(resolve));
        assertOpen();
      }
      return { deleted, cutoffMs };
    },
    async ping() {
      if (closed) return false;
      try {
        return select1.get() === 1;
      } catch {
        return false;
      }
    },
    stats,
  };
}
