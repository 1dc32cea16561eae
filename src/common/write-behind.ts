/**
 * Write-behind: what a sink hands to its database is kept in memory, in order, until a commit
 * takes it. The usage store (a transaction per batch of records) and the budgets' spend (a
 * transaction per finished call) both stand on it, so the bound on what is kept, the retry
 * backoff and the line between a failure worth retrying and one that never heals are written
 * once.
 *
 * A commit is synchronous (better-sqlite3): it takes the whole batch or throws. After a failure
 * the database may recover from (locked, full, read-only...) the batch stays queued and the next
 * attempt waits 100 ms, doubling up to 5 s; meanwhile new items only queue, so an outage costs
 * one attempt per step of the backoff, not one per finished call. A failure `isPermanent` names
 * (the items themselves are at fault) discards the batch, counted as invalid: retried, it would
 * fail forever and hold back everything queued behind it.
 */
import { createPendingQueue } from './queue.js';

/**
 * Why a commit runs, so that a backend can choose how long to wait for a lock: `background` on
 * the host's event loop with nobody waiting (fail fast, it is retried), `flush` for a caller
 * awaiting flush(), `close` for the last attempt before the queue is given up.
 */
export type CommitMode = 'background' | 'flush' | 'close';

interface WriteBehindOptions<T> {
  /** Items kept while commits fail; past it the oldest is evicted and counted as dropped. */
  capacity: number;
  /** Most items given to one commit. */
  maxBatch: number;
  /** Most items committed in one turn of the event loop; the rest wait for the next. Default `maxBatch`. */
  maxPerTurn?: number | undefined;
  /**
   * When an item pushed while nothing is waiting is committed: `now`, inside push() (the caller's
   * own work is then durable when push returns); `microtask`, together with everything pushed
   * in the same tick, before the event loop turns; `immediate`, on the next turn (batches more,
   * durable later).
   */
  start: 'now' | 'microtask' | 'immediate';
  /** Commit `batch`, the oldest items queued, in one go; throw if it could not. */
  commit(batch: readonly T[], mode: CommitMode): void;
  /** True when `error` means this batch can never be committed: it is discarded, not retried. */
  isPermanent(error: unknown): boolean;
  /** Every failed commit, `permanent` or to be retried. Must not throw (it is guarded anyway). */
  onError?: ((error: unknown, permanent: boolean) => void) | undefined;
}

interface WriteBehindStats {
  /** Items committed. */
  committed: number;
  /** Commit attempts that failed and are retried. */
  failed: number;
  /** Items given up: evicted past capacity, pushed after close, or still queued at close. */
  dropped: number;
  /** Items discarded because their commit failed permanently. */
  invalid: number;
  /** Items waiting to be committed. */
  pending: number;
}

interface WriteBehind<T> {
  /** Queue one item and schedule its commit. Never throws. */
  push(item: T): void;
  /**
   * Commit everything queued, a turn of the event loop at a time. Rejects with the commit's
   * error if the database still refuses; the items stay queued and are retried with backoff.
   */
  flush(): Promise<void>;
  /**
   * A last flush; then whatever is left is dropped (and counted), and later pushes are dropped.
   * Resolves with the number dropped here and the error that made the last flush fail, if any.
   */
  close(): Promise<{ dropped: number; error: unknown }>;
  stats(): WriteBehindStats;
}

const MAX_RETRY_DELAY_MS = 5_000;

/** Delay before the next attempt after `failures` consecutive failed commits: 100 ms, doubling to 5 s. */
export function retryDelayMs(failures: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, 50 * 2 ** Math.min(failures, 10));
}

export function createWriteBehind<T>(options: WriteBehindOptions<T>): WriteBehind<T> {
  const queue = createPendingQueue<T>(options.capacity);
  const maxBatch = Math.max(1, options.maxBatch);
  const maxPerTurn = Math.max(1, options.maxPerTurn ?? maxBatch);
  const counters = { committed: 0, failed: 0, dropped: 0, invalid: 0 };
  let failures = 0;
  let scheduled = false;
  let retryTimer: NodeJS.Timeout | null = null;
  let closed = false;

  const report = (error: unknown, permanent: boolean) => {
    try {
      options.onError?.(error, permanent);
    } catch {
      // A diagnostics hook must not break the queue.
    }
  };

  const permanent = (error: unknown): boolean => {
    try {
      return options.isPermanent(error);
    } catch {
      return false;
    }
  };

  /** Commit batches until the queue is empty, `maxPerTurn` items are committed, or one fails. */
  function commitTurn(mode: CommitMode): { result: 'done' | 'more' } | { result: 'failed'; error: unknown } {
    let left = maxPerTurn;
    while (queue.size > 0) {
      if (left <= 0) return { result: 'more' };
      const batch = queue.peek(Math.min(maxBatch, left));
      try {
        options.commit(batch, mode);
        counters.committed += batch.length;
      } catch (error) {
        const given = permanent(error);
        report(error, given);
        if (!given) {
          counters.failed++;
          failures++;
          return { result: 'failed', error };
        }
        counters.invalid += batch.length;
      }
      queue.consume(batch.length);
      failures = 0;
      left -= batch.length;
    }
    return { result: 'done' };
  }

  function clearRetry(): void {
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
  }

  function scheduleRetry(): void {
    if (retryTimer || closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      drain();
    }, retryDelayMs(failures));
    retryTimer.unref();
  }

  /** Commit in the background; a backlog beyond one turn continues on the next. */
  function drain(): void {
    scheduled = false;
    if (closed) return;
    const { result } = commitTurn('background');
    if (result === 'failed') scheduleRetry();
    else if (result === 'more') {
      scheduled = true;
      setImmediate(drain);
    }
  }

  async function flushAs(mode: CommitMode): Promise<void> {
    clearRetry();
    for (;;) {
      const turn = commitTurn(mode);
      if (turn.result === 'done') return;
      if (turn.result === 'failed') {
        scheduleRetry();
        throw turn.error;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  return {
    push(item) {
      try {
        if (closed) {
          counters.dropped++;
          return;
        }
        counters.dropped += queue.push(item);
        if (scheduled || retryTimer) return;
        if (options.start === 'now') return drain();
        scheduled = true;
        (options.start === 'microtask' ? queueMicrotask : setImmediate)(drain);
      } catch {
        // push() is on the caller's path: it never throws.
      }
    },
    flush: () => flushAs('flush'),
    async close() {
      if (closed) return { dropped: 0, error: undefined };
      let error: unknown;
      try {
        await flushAs('close');
      } catch (e) {
        error = e;
      }
      closed = true;
      clearRetry();
      const dropped = queue.clear();
      counters.dropped += dropped;
      return { dropped, error };
    },
    stats: () => ({ ...counters, pending: queue.size }),
  };
}
