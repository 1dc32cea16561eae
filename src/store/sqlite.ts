/**
 * The embedded usage store: one SQLite file (or ':memory:'), shared safely by several processes.
 *
 * Commit strategy. `write()` only appends to a queue (well under a microsecond) and, once per
 * tick, queues a microtask that commits everything written during that tick in one BEGIN
 * IMMEDIATE transaction: the rows, then what they add to the rollups. A microtask runs before
 * the event loop turns, so by the time the code that completed a call does its next I/O
 * (answers its own client, logs "done"), the row is in the WAL, and with synchronous=NORMAL a
 * WAL write survives a kill -9 of the process (connection.ts; test/store/process.test.ts kills a
 * writer mid-load and finds every call it reported). Batching with setImmediate instead would
 * group the completions of a whole loop phase into one transaction, but a completed call would
 * not be durable until the next turn. Measured by bench/store.mjs on a shared 2-core VM: a
 * 1-row commit costs ~130-150 µs (one page per touched b-tree written to the WAL), 50
 * completions in one loop phase cost ~130 µs each with the microtask and ~60 µs with
 * setImmediate. The microtask is the choice: a completed call is never lost for less than a
 * millisecond of CPU per call, and whatever completes in the same callback shares a commit.
 * Checkpoints (the only fsyncs) run on a worker thread (checkpointer.ts), never in these commits.
 *
 * Failures (SQLITE_BUSY past the busy timeout, disk full, a read-only file) never reach the
 * caller: the batch stays queued (at most `maxPending` records, oldest dropped first and
 * counted), the failure is counted, and the commit is retried with backoff; while backing off,
 * writes only queue (src/common/write-behind.ts, which the budgets' spend shares). Commits on the caller's event loop wait at most 50 ms for another
 * process's lock (connection.ts, LockWaits.brief); only flush() and close() wait the full busy
 * timeout.
 *
 * One record never holds back the others. Its figures are bounded before they are written
 * (row.ts; counted as `clamped`), and a record whose row SQLite refuses is discarded (counted
 * as `invalid`). Should any statement of a batch still fail for a reason that is not the
 * database's (not busy, full, read-only, I/O...), the batch is written again one record at a
 * time, each in its own savepoint: the record that fails is discarded and counted, the rest
 * commit. Retrying such a batch as a whole would fail the same way forever.
 */
import type { Statement } from 'better-sqlite3';
import { HOUR_MS } from '../common/buckets.js';
import { type CommitMode, createWriteBehind } from '../common/write-behind.js';
import type { CallRecord } from '../record.js';
import { registerBucketFunctions } from './buckets.js';
import { type Checkpointer, startCheckpointer } from './checkpointer.js';
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
import { migrate } from './migrate.js';
import { createRollupBatch, ROLLUP_TABLES, type RollupBatch, upsertSql } from './rollup.js';
import { rowValues, toUsageEvent, toUsageRow, USAGE_COLUMNS, type UsageRow } from './row.js';
import { errorCode, isEnvironmentError, isRecordError } from './sqlite-errors.js';
import { type SqlPart, summarize } from './summary.js';
import { timeseries } from './timeseries.js';
import type { EventsPage, EventsQuery, StoreStats, UsageEvent, UsageStore } from './types.js';

export interface SqliteStoreOptions {
  /** Database file; ':memory:' for a private in-memory database. */
  path: string;
  /**
   * How long flush() and close() wait for another process's write lock. Default 5000. Commits
   * on the event loop wait at most 50 ms and are retried later.
   */
  busyTimeoutMs?: number | undefined;
  now?: (() => number) | undefined;
  /** Records kept while commits fail; beyond it the oldest are dropped. Default 100 000. */
  maxPending?: number | undefined;
  /** How often a worker thread checkpoints the WAL into the database file. Default 1000. */
  checkpointIntervalMs?: number | undefined;
  /** Most records per transaction. Default 10 000. */
  maxBatch?: number | undefined;
  /**
   * @internal For bench/store.mjs only: 'immediate' commits with setImmediate, which batches
   * more but gives up durability before the caller's next I/O. Default 'microtask'.
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

export function openSqliteStore(options: SqliteStoreOptions): UsageStore {
  const now = options.now ?? Date.now;
  const maxBatch = options.maxBatch ?? 10_000;
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

  const insert = db.prepare(
    `INSERT INTO usage (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')}) ` +
      'ON CONFLICT (id) DO NOTHING',
  );
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

  function startCheckpointing(): Checkpointer | null {
    if (db.memory) return null;
    const selfCheckpoint = () => {
      if (db.open) db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
    };
    db.pragma('wal_autocheckpoint = 0');
    const worker = startCheckpointer(options.path, {
      intervalMs: options.checkpointIntervalMs,
      onError: (error) => report(error),
      onStop: selfCheckpoint,
    });
    if (!worker) selfCheckpoint();
    return worker;
  }

  const report = (error: unknown) => {
    lastError = { code: errorCode(error), message: (error as Error)?.message ?? String(error), atMs: now() };
    try {
      options.onError?.(error);
    } catch {
      // A diagnostics hook must not break the store.
    }
  };

  const checkpointer = startCheckpointing();

  /** Insert one record's row and add it to `rollup`; a record SQLite refuses is tallied. */
  const insertRecord = (record: CallRecord, rollup: RollupBatch, tally: Tally) => {
    const clamped: string[] = [];
    let row: UsageRow;
    try {
      row = toUsageRow(record, clamped);
      // Positional parameters: a third cheaper to bind than 61 named ones.
      if (insert.run(rowValues(row)).changes === 0) {
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
  const writeBatch = db.transaction((batch: readonly CallRecord[]) => {
    const tally = newTally();
    const rollup = createRollupBatch();
    for (const record of batch) insertRecord(record, rollup, tally);
    upsertRollups(rollup);
    return tally;
  });

  /** One record and its rollups; called inside writeEach, so it runs in a savepoint. */
  const writeAlone = db.transaction((record: CallRecord) => {
    const tally = newTally();
    const rollup = createRollupBatch();
    insertRecord(record, rollup, tally);
    upsertRollups(rollup);
    return tally;
  });

  /** After a batch failed for one of its records: each record alone, the failing ones discarded. */
  const writeEach = db.transaction((batch: readonly CallRecord[]) => {
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
  const commit = (batch: readonly CallRecord[], mode: CommitMode) => {
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

  const pending = createWriteBehind<CallRecord>({
    capacity: options.maxPending ?? 100_000,
    maxBatch,
    start: options.commitScheduling === 'immediate' ? 'immediate' : 'microtask',
    commit,
    // writeEach already discards the records at fault: what still fails is the database's.
    isPermanent: (error) => !isEnvironmentError(error) && isRecordError(error),
    onError: (error) => report(error),
  });

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

  return {
    write: (record) => pending.push(record),
    async flush() {
      try {
        await pending.flush();
      } catch (error) {
        throw flushError(error, pending.stats().pending);
      }
    },
    async close() {
      if (closed) return;
      // The last attempt may wait the whole busy timeout: nothing is on the caller's path now.
      const last = await pending.close();
      const failure = last.error === undefined ? null : flushError(last.error, last.dropped);
      closed = true;
      if (last.dropped > 0) {
        report(new StoreError(`Dropped ${last.dropped} usage records at close: ${lastError?.message}`));
      }
      await checkpointer?.close();
      try {
        db.pragma('optimize');
      } catch {
        // Only a planner hint.
      }
      db.close();
      if (failure) throw failure;
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
    stats() {
      const queued = pending.stats();
      return {
        ...counters,
        invalid: counters.invalid + queued.invalid,
        failed: queued.failed,
        dropped: queued.dropped,
        pending: queued.pending,
        lastError,
      };
    },
  };
}
