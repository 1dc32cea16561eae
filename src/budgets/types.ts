import type { Period } from './period.js';

export type { Period } from './period.js';

export interface BudgetScope {
  user?: string;
  project?: string;
  feature?: string;
  model?: string;
  provider?: string;
}

export const SCOPE_KEYS = ['user', 'project', 'feature', 'model', 'provider'] as const;

export type BudgetAction = 'alert' | 'block';

/**
 * The most a spend, a reservation or a sum of them is taken to be, in nano-dollars (2^62,
 * $4.6 billion): far above any limit (at most $1e9), and room left under SQLite's 64-bit
 * integers, so adding one more call to a saturated spend never overflows.
 */
export const MAX_NANOS = 2 ** 62;

/** A figure in nano-dollars as the ledger stores it: an integer in [0, MAX_NANOS]; NaN is 0. */
export function clampNanos(nanos: number): number {
  if (Number.isNaN(nanos) || nanos <= 0) return 0;
  return nanos >= MAX_NANOS ? MAX_NANOS : Math.round(nanos);
}

/** A budget as stored. Money in integer nano-dollars. */
export interface Budget {
  id: string;
  name: string;
  scope: BudgetScope;
  period: Period;
  timezone: string;
  limitNanos: number;
  /** Fractions of the limit, ascending, e.g. [0.5, 0.8, 1]. */
  thresholds: number[];
  action: BudgetAction;
  webhookUrl: string | null;
  /**
   * As stored: sealed (`enc:v1:…`, see secret-box.ts) when a secret key is configured, else
   * clear. The clear secret never leaves the process except once, in the 201 that generated it.
   */
  webhookSecret: string | null;
  createdMs: number;
  updatedMs: number;
}

export interface SpendRow {
  spentNanos: number;
  requests: number;
  unpricedRequests: number;
}

export type AlertState = 'pending' | 'delivered' | 'failed' | 'no_webhook' | 'cancelled';

export interface AlertRow {
  id: string;
  budgetId: string;
  periodKey: string;
  threshold: number;
  payload: string;
  createdMs: number;
  state: AlertState;
  attempts: number;
  nextAttemptMs: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredMs: number | null;
}

/** One call's share of a blocking budget, held while the call is in flight. */
export interface Reservation {
  budgetId: string;
  periodKey: string;
  limitNanos: number;
  nanos: number;
}

/** A spend increment for one budget, from one finished call. */
export interface SpendDelta {
  budgetId: string;
  periodKey: string;
  nanos: number;
  unpriced: boolean;
}

/** A threshold crossing to record (once) in the outbox. */
export interface AlertInsert {
  id: string;
  budgetId: string;
  periodKey: string;
  threshold: number;
  payload: string;
  createdMs: number;
  hasWebhook: boolean;
}

/**
 * Persistence for budgets (SQL lives in src/store/budgets.ts). Every method is synchronous:
 * better-sqlite3 runs each in one transaction, and the immediate ones take the write lock
 * first so that several processes sharing the file see one spend.
 */
export interface BudgetStore {
  /** Changes whenever any process creates, updates or deletes a budget. */
  version(): number;
  list(): Budget[];
  get(id: string): Budget | null;
  insert(budget: Budget, initialSpend: { periodKey: string; spend: SpendRow } | null): void;
  update(budget: Budget): void;
  delete(id: string): boolean;
  spend(budgetId: string, periodKey: string): SpendRow;
  /** Reservations still held: their lease runs past `nowMs`. */
  reservedNanos(budgetId: string, periodKey: string, nowMs: number): number;
  /**
   * In one immediate transaction: for each reservation, spent + reserved + nanos must stay
   * within the limit; if all do, insert them all, leased until `expiresMs`, and return null,
   * else return the id of the first budget that would be exceeded and insert nothing.
   */
  reserve(callId: string, reservations: Reservation[], nowMs: number, expiresMs: number): string | null;
  /**
   * Extend the leases of these calls' reservations to `expiresMs` (a lease already run out at
   * `nowMs` stays out), and delete every reservation whose lease has run out.
   */
  renew(callIds: readonly string[], expiresMs: number, nowMs: number): void;
  /** Delete a call's reservations (a call that ended without a spend to settle). */
  release(callId: string): void;
  /**
   * In one immediate transaction: release the call's reservations, add its spend, and for
   * each budget let `crossed` (given the spend before and after) name the alerts to insert;
   * alerts already present (same budget, period and threshold) are ignored. `patient` waits
   * the store's full busy timeout for another process's lock (flush, shutdown); otherwise a
   * settle on the event loop waits briefly and its failure is retried.
   */
  settle(
    callId: string,
    deltas: SpendDelta[],
    crossed: (budgetId: string, periodKey: string, before: number, after: number) => AlertInsert[],
    patient?: boolean,
  ): number;
  alerts(budgetId: string | null, limit: number): AlertRow[];
  /** Claim up to `limit` due pending alerts for delivery by pushing their next attempt out by `leaseMs`. */
  claimDue(nowMs: number, leaseMs: number, limit: number): AlertRow[];
  recordAttempt(
    id: string,
    result: {
      state: AlertState;
      status: number | null;
      error: string | null;
      nextAttemptMs: number;
      deliveredMs: number | null;
    },
  ): void;
  close(): void;
}
