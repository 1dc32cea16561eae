/**
 * The event loop's side of 'journal' and 'async' durability: build the row, journal it (journal
 * mode), queue it, and hand the queue to the writer thread (writer-worker.ts) one batch at a
 * time. What stays on the caller's event loop per call: the row (row.ts), its JSON line, one
 * write(2) to the journal, a queue push; per batch one postMessage and one acknowledgement.
 *
 * One batch is in flight at a time: while the thread commits it, the next one gathers, so
 * batches grow with the load and an outage holds at most one batch in the thread. A batch also
 * gathers for GATHER_MS before it is handed over (or until GATHER_ROWS records wait): each
 * hand-over costs the event loop a postMessage and an acknowledgement, and each transaction
 * costs the thread a commit, CPU that on a small machine the event loop competes for. A record
 * is journaled when write() returns, so this delays only its commit (and widens what 'async'
 * loses to a kill -9 by as much); flush() hands over at once.
 *
 * The queue is bounded like write-behind.ts's: past `capacity` records pending (queued and in
 * flight), the oldest queued record is dropped and counted.
 */
import { createPendingQueue } from '../common/queue.js';
import type { CallRecord } from '../record.js';
import { StoreError } from './errors.js';
import type { Journal, Segment } from './journal.js';
import { rowValues, toUsageRow } from './row.js';
import type { RunMode, WorkerError, WriterEvent, WriterWorker } from './writer-worker.js';

/** How long records gather before they are handed to the thread (see the header). */
export const GATHER_MS = 2;
/** ...unless this many wait already. */
export const GATHER_ROWS = 256;

/** What the store counts, shared by every path a record can take. */
export interface WriteCounters {
  written: number;
  duplicates: number;
  invalid: number;
  clamped: number;
}

/** A record on its way: its row as a journal line, what was clamped, where it was journaled. */
export interface Entry {
  seq: number;
  line: string;
  clamped: { id: string; columns: string[] } | null;
  segment: Segment | null;
}

export interface WorkerWriterOptions {
  worker: WriterWorker;
  journal: Journal | null;
  capacity: number;
  maxBatch: number;
  counters: WriteCounters;
  report(error: unknown): void;
  reportClamped(clamped: Array<{ id: string; columns: string[] }>): void;
}

export interface WorkerWriter {
  write(record: CallRecord): void;
  /** Every event of the thread goes here. */
  handle(event: WriterEvent): void;
  /** Resolves once everything written before the call is committed; rejects with the thread's failure. */
  flush(mode: Exclude<RunMode, 'background'>): Promise<void>;
  /** The thread is gone: stop, reject the flushes waiting, and hand back what is not committed, oldest first. */
  abandon(reason: unknown): Entry[];
  /** Give up what is pending (counted as dropped): at close, after the last flush. */
  drop(): number;
  stats(): { failed: number; dropped: number; pending: number };
}

/** The thread's error as the store reports it: an Error with the SQLite code. */
export function workerError(error: WorkerError): Error {
  return Object.assign(new StoreError(error.message), { code: error.code });
}

export function createWorkerWriter(options: WorkerWriterOptions): WorkerWriter {
  const { worker, journal, counters, report } = options;
  const queue = createPendingQueue<Entry>(Number.POSITIVE_INFINITY);
  const maxBatch = Math.max(1, options.maxBatch);
  let inFlight: { id: number; entries: Entry[] } | null = null;
  let seq = 0;
  let batchIds = 0;
  let requestIds = 0;
  let gathering: NodeJS.Timeout | null = null;
  let stopped = false;
  let failed = 0;
  let dropped = 0;
  let announced: Segment | null = null;
  const replies = new Map<number, { resolve(ok: boolean): void; reject(error: unknown): void }>();
  let lastFailure: WorkerError | null = null;
  let failing = false;

  const pending = () => queue.size + (inFlight?.entries.length ?? 0);

  /**
   * The thread keeps the process alive while it commits a batch or owes flush() an answer, not
   * while it waits out an outage (journal mode keeps the records for the next open) or idles.
   */
  const keepAlive = () => {
    if (replies.size > 0 || (inFlight !== null && !failing)) worker.ref();
    else worker.unref();
  };

  function post(): void {
    if (gathering !== null) clearTimeout(gathering);
    gathering = null;
    if (inFlight !== null || queue.size === 0 || stopped) return;
    const entries = queue.peek(maxBatch);
    queue.consume(entries.length);
    inFlight = { id: ++batchIds, entries };
    let lines = entries[0]!.line;
    for (let i = 1; i < entries.length; i++) lines += `\n${entries[i]!.line}`;
    // The thread keeps segments named here out of its replays, however long this process is quiet.
    const segment = journal?.current() ?? null;
    const name = segment !== announced ? (segment?.name ?? null) : null;
    announced = segment;
    worker.batch(inFlight.id, lines, name);
    keepAlive();
  }

  function acknowledge(event: Extract<WriterEvent, { t: 'done' }>): void {
    if (inFlight === null || inFlight.id !== event.id) return;
    const { entries } = inFlight;
    inFlight = null;
    failing = false;
    counters.written += entries.length - event.refused.length;
    counters.duplicates += event.duplicates.length;
    counters.invalid += event.refused.length;
    if (event.batchError) report(workerError(event.batchError));
    for (const refusal of event.refused) report(workerError(refusal));
    const clamped: Array<{ id: string; columns: string[] }> = [];
    const skipped =
      event.duplicates.length + event.refused.length === 0
        ? null
        : new Set([...event.duplicates, ...event.refused.map((r) => r.index)]);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.clamped !== null && !skipped?.has(i)) clamped.push(entry.clamped);
      journal?.settle(entry.segment);
    }
    if (clamped.length > 0) options.reportClamped(clamped);
    // What queued meanwhile gathers too: handed over at once, a batch under steady load would
    // be the one or two records of a commit's duration, each costing a postMessage.
    if (queue.size >= GATHER_ROWS) post();
    else if (queue.size > 0) gathering ??= setTimeout(post, GATHER_MS);
    keepAlive();
  }

  function request(mode: RunMode): Promise<boolean> {
    const id = ++requestIds;
    return new Promise((resolve, reject) => {
      replies.set(id, { resolve, reject });
      worker.run(id, mode);
      keepAlive();
    });
  }

  /** The oldest record not yet committed or given up has a later seq than `target`. */
  const settledThrough = (target: number) => {
    const oldest = inFlight?.entries[0] ?? queue.peek(1)[0];
    return oldest === undefined || oldest.seq > target;
  };

  return {
    write(record) {
      try {
        if (stopped) {
          dropped++;
          return;
        }
        const columns: string[] = [];
        let entry: Entry;
        try {
          const row = toUsageRow(record, columns);
          const line = JSON.stringify(rowValues(row));
          entry = {
            seq: ++seq,
            line,
            clamped: columns.length === 0 ? null : { id: row.id as string, columns },
            segment: journal === null ? null : journal.append(line),
          };
        } catch (error) {
          counters.invalid++;
          report(error);
          return;
        }
        queue.push(entry);
        if (pending() > options.capacity && queue.size > 0) {
          const [oldest] = queue.peek(1);
          queue.consume(1);
          dropped++;
          journal?.settle(oldest!.segment);
        }
        if (inFlight === null) {
          if (queue.size >= GATHER_ROWS) post();
          else gathering ??= setTimeout(post, GATHER_MS);
        }
      } catch {
        // write() is on the caller's path: it never throws.
      }
    },
    handle(event) {
      switch (event.t) {
        case 'done':
          return acknowledge(event);
        case 'failed':
          failed++;
          lastFailure = event.error;
          report(workerError(event.error));
          failing = true;
          keepAlive();
          return;
        case 'ran': {
          const reply = replies.get(event.id);
          replies.delete(event.id);
          keepAlive();
          if (event.ok) reply?.resolve(true);
          else
            reply?.reject(
              workerError(event.error ?? lastFailure ?? { code: 'Error', message: 'commit failed' }),
            );
          return;
        }
        default:
          return;
      }
    },
    async flush(mode) {
      const target = seq;
      for (;;) {
        if (stopped) throw new StoreError('The writer thread stopped.');
        post();
        await request(mode);
        if (settledThrough(target)) return;
      }
    },
    abandon(reason) {
      stopped = true;
      if (gathering !== null) clearTimeout(gathering);
      for (const reply of replies.values()) reply.reject(reason);
      replies.clear();
      const left = [...(inFlight?.entries ?? []), ...queue.peek(queue.size)];
      inFlight = null;
      queue.clear();
      return left;
    },
    drop() {
      stopped = true;
      if (gathering !== null) clearTimeout(gathering);
      const left = pending();
      dropped += left;
      inFlight = null;
      queue.clear();
      return left;
    },
    stats: () => ({ failed, dropped, pending: pending() }),
  };
}
