/**
 * Spend: what blocking budgets hold for calls in flight (reservations) and what finished calls
 * cost (settles), counted against every budget a call falls under, with the thresholds it
 * crosses put in the outbox in the same transaction.
 *
 * Reservations are leased (the ledger's `reserve`): this process renews the leases of its calls
 * still in flight on a heartbeat, so a crashed process's reservations stop counting within one
 * lease. Settles never throw into a finished call: when the database cannot take one (locked,
 * full) it is kept, in order, and committed as soon as it can be (src/common/write-behind.ts).
 */
import { randomUUID } from 'node:crypto';
import { type CommitMode, createWriteBehind } from '../common/write-behind.js';
import { isInvalidRecordError } from '../errors/errors.js';
import type { CallRecord } from '../record.js';
import { thresholdEvent } from './events.js';
import { type PeriodBounds, periodBounds } from './period.js';
import { callScopeOf, scopeMatches } from './scope.js';
import type { AlertInsert, Budget, BudgetLedger, SpendDelta, ThresholdsCrossed } from './types.js';

/** Counters about spend accounting itself: what waits, and what could not be counted. */
export interface BudgetsStats {
  /** Finished calls whose spend is committed. */
  settled: number;
  /** Commits that failed (each is retried; this counts attempts). */
  failed: number;
  /** Calls whose spend is kept in memory until the database takes it. */
  pending: number;
  /** Calls whose spend was given up: the queue overflowed, or it was still waiting at stop(). */
  dropped: number;
  /** Calls whose spend the database refused as invalid (e.g. their budget was deleted meanwhile). */
  invalid: number;
}

export interface Spend {
  /** Reserve `projectedNanos` against each of `blocking`; returns the budget that refuses, or null. */
  reserve(callId: string, blocking: readonly Budget[], projectedNanos: number): Budget | null;
  /** Count a finished call against every budget it falls under. Never throws. */
  settle(record: CallRecord): void;
  /** Renew the leases of this process's calls still in flight; returns how many. */
  renewReservations(): number;
  /** Commit the spend kept while the database was unavailable; rejects if it still is. */
  flush(): Promise<void>;
  /** Let go of every reservation held, and make a last attempt at the spend kept. */
  stop(): Promise<void>;
  stats(): BudgetsStats;
}

interface SpendOptions {
  ledger: BudgetLedger;
  /** The budgets that exist now (definitions.ts). */
  budgets: () => Budget[];
  now: () => number;
  /** How long a reservation counts without being renewed. */
  leaseMs: number;
  /** The longest a reservation is renewed. */
  maxReservationMs: number;
  /** Spends kept while they cannot be committed. */
  maxPending: number;
  /** A committed spend fired alerts with a webhook to deliver. */
  onAlert: () => void;
  logger?: ((message: string, error?: unknown) => void) | undefined;
}

/** A spend waiting to be committed; `crossed` names its alerts and the keys to mark fired. */
interface PendingSettle {
  callId: string;
  deltas: SpendDelta[];
  crossed: (firing: string[]) => ThresholdsCrossed;
  webhook: boolean;
}

/** Queued spends committed per turn of the event loop (each is its own transaction). */
const SETTLES_PER_TURN = 200;

export function createSpend(options: SpendOptions): Spend {
  const { ledger, now, leaseMs, maxReservationMs } = options;
  /** Thresholds this process knows are in the outbox: spares the repeated inserts. */
  const fired = new Set<string>();
  /** Calls of this process holding reservations, with when they reserved. */
  const held = new Map<string, number>();
  let heartbeat: NodeJS.Timeout | null = null;
  let stopped = false;

  /**
   * One commit. `fired` learns its thresholds only once they are in the outbox (marked before,
   * a commit that failed would lose the alert for good).
   */
  function commit(batch: readonly PendingSettle[], mode: CommitMode): void {
    for (const item of batch) {
      const firing: string[] = [];
      ledger.settle(item.callId, item.deltas, item.crossed(firing), mode);
      for (const key of firing) fired.add(key);
      if (item.webhook && firing.length > 0) options.onAlert();
    }
  }

  const pending = createWriteBehind<PendingSettle>({
    capacity: options.maxPending,
    // One transaction per call: a call refused (its budget deleted) does not take others with it.
    maxBatch: 1,
    maxPerTurn: SETTLES_PER_TURN,
    // On the finished call's path, when nothing waits: its spend counts before the next call's
    // reservation. Behind spends still waiting, it waits too: order is kept, and a locked
    // database is not asked again by every finished call.
    start: 'now',
    commit,
    isPermanent: isInvalidRecordError,
    onError: (error, permanent) =>
      options.logger?.(
        permanent ? 'llm-meter: budget spend refused' : 'llm-meter: budget spend not committed yet',
        error,
      ),
  });

  /**
   * Renew the leases of calls still in flight, except those held past maxReservationMs; they
   * are let go here and their leases run out. The timer runs only while something is held.
   */
  function renewReservations(): number {
    const t = now();
    for (const [callId, since] of held) if (t - since >= maxReservationMs) held.delete(callId);
    if (held.size === 0) {
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      return 0;
    }
    try {
      ledger.renew([...held.keys()], t + leaseMs, t);
    } catch (error) {
      // Missed once, the leases still run a while; the next beat tries again.
      options.logger?.('llm-meter: budget reservations not renewed', error);
      return 0;
    }
    return held.size;
  }

  function hold(callId: string, since: number): void {
    held.set(callId, since);
    if (heartbeat || stopped) return;
    heartbeat = setInterval(renewReservations, Math.max(1, Math.floor(leaseMs / 3)));
    heartbeat.unref();
  }

  /** A call that held a reservation ended without a spend to settle: give the budget back now. */
  function release(callId: string): void {
    if (!held.delete(callId)) return;
    try {
      ledger.release(callId);
    } catch (error) {
      options.logger?.('llm-meter: budget reservation not released (its lease will run out)', error);
    }
  }

  /** The alerts a spend fires: every threshold at or under the spend, not known to be fired. */
  function thresholdsCrossed(
    byId: ReadonlyMap<string, { budget: Budget; bounds: PeriodBounds }>,
    firing: string[],
  ): ThresholdsCrossed {
    return (budgetId, periodKey, _before, after): AlertInsert[] => {
      const entry = byId.get(budgetId);
      if (!entry) return [];
      const { budget, bounds } = entry;
      // The ledger's unique key keeps each to one alert per period (across processes), and
      // `fired` spares this process the repeated inserts.
      return budget.thresholds
        .filter((th) => after >= th * budget.limitNanos && !fired.has(`${budgetId}|${periodKey}|${th}`))
        .map((threshold) => {
          firing.push(`${budgetId}|${periodKey}|${threshold}`);
          const id = randomUUID();
          const createdMs = now();
          return {
            id,
            budgetId,
            periodKey,
            threshold,
            payload: thresholdEvent(budget, bounds, threshold, after, id, createdMs),
            createdMs,
            hasWebhook: budget.webhookUrl !== null,
          };
        });
    };
  }

  return {
    reserve(callId, blocking, projectedNanos) {
      if (blocking.length === 0) return null;
      const t = now();
      const refusedBy = ledger.reserve(
        callId,
        blocking.map((b) => ({
          budgetId: b.id,
          periodKey: periodBounds(b.period, b.timezone, t).key,
          limitNanos: b.limitNanos,
          nanos: projectedNanos,
        })),
        t,
        t + leaseMs,
      );
      if (refusedBy === null) {
        hold(callId, t);
        return null;
      }
      return blocking.find((b) => b.id === refusedBy) ?? null;
    },
    settle(record) {
      if (record.outcome === 'blocked') return release(record.id);
      const scope = callScopeOf(record);
      const matching = options.budgets().filter((b) => scopeMatches(b.scope, scope));
      if (matching.length === 0) return release(record.id);
      // The settle releases the reservation in the same transaction as the spend.
      held.delete(record.id);
      const t = record.timing.startMs;
      const byId = new Map<string, { budget: Budget; bounds: PeriodBounds }>();
      const deltas: SpendDelta[] = matching.map((budget) => {
        const bounds = periodBounds(budget.period, budget.timezone, t);
        byId.set(budget.id, { budget, bounds });
        return {
          budgetId: budget.id,
          periodKey: bounds.key,
          nanos: record.cost.totalNanos ?? 0,
          unpriced: record.cost.totalNanos === null,
        };
      });
      pending.push({
        callId: record.id,
        deltas,
        webhook: matching.some((b) => b.webhookUrl),
        crossed: (firing) => thresholdsCrossed(byId, firing),
      });
    },
    renewReservations,
    async flush() {
      try {
        await pending.flush();
      } catch (error) {
        throw new Error(`Could not commit the spend of ${pending.stats().pending} calls to their budgets.`, {
          cause: error,
        });
      }
    },
    async stop() {
      stopped = true;
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      // Calls still holding budget when the process stops will never settle here.
      for (const callId of [...held.keys()]) release(callId);
      // A last chance for spend kept during an outage; what still cannot be committed is lost.
      await pending.close();
    },
    stats() {
      const { committed, failed, dropped, invalid, pending: waiting } = pending.stats();
      return { settled: committed, failed, pending: waiting, dropped, invalid };
    },
  };
}
