/**
 * The budget ledger: the storage contract of the budgets (src/budgets/) — budget rows, spend per
 * period, in-flight reservations, and fired alerts with their webhook outbox — with no SQL in
 * sight. src/store/sqlite-ledger.ts implements it on SQLite; a PostgreSQL implementation is
 * written against the promises below and must pass the same conformance suite
 * (test/store/conformance/budget-ledger.ts).
 *
 * It lives here, a leaf, rather than in src/store/: the budgets program against it and the store
 * implements it, and neither sink imports the other (DESIGN.md, rules of the house).
 *
 * Shared by many handles: several processes may each open a ledger on one database. Every method
 * that writes is one transaction that takes the write lock before it reads what it decides on
 * (SQLite: BEGIN IMMEDIATE; PostgreSQL: row locks or SERIALIZABLE), so all handles see one spend,
 * one set of reservations and one outbox. Every method is synchronous, as better-sqlite3 is; a
 * backend with an asynchronous driver needs them to return promises (the conformance suite
 * awaits every result, so it runs unchanged against either). Money is integer nano-dollars,
 * clamped to [0, MAX_NANOS] (budget-shape.ts); time is epoch milliseconds, always passed in by
 * the caller, never read from the clock by the ledger.
 *
 * Failures: a method that throws wrote nothing. `InvalidRecordError` (src/errors/errors.ts) means
 * the write can never succeed as asked (a budget it names no longer exists); any other error is
 * the database's (locked, full, unreachable) and the same call may succeed later.
 */
import type { AlertState, BudgetAction, BudgetScope, Period } from './budget-shape.js';
import type { CommitMode } from './write-behind.js';

/** A budget as stored. Money in integer nano-dollars. */
export interface Budget {
  id: string;
  name: string;
  scope: BudgetScope;
  period: Period;
  /** IANA time zone of the period boundaries. */
  timezone: string;
  limitNanos: number;
  /** Fractions of the limit, ascending, e.g. [0.5, 0.8, 1]. */
  thresholds: number[];
  action: BudgetAction;
  webhookUrl: string | null;
  /**
   * Opaque to the ledger: sealed (`enc:v1:…`, src/budgets/secret-box.ts) when a secret key is
   * configured, else clear. The clear secret never leaves the process except once, in the 201
   * that generated it.
   */
  webhookSecret: string | null;
  createdMs: number;
  updatedMs: number;
}

/** What a budget has spent in one period. */
export interface SpendRow {
  spentNanos: number;
  /** Finished calls counted, priced or not. */
  requests: number;
  /** Calls without a known price: they count as requests, and as 0 in spentNanos. */
  unpricedRequests: number;
}

/** A fired threshold alert and its delivery state. */
export interface AlertRow {
  id: string;
  budgetId: string;
  periodKey: string;
  threshold: number;
  /** The webhook body, exactly as it is delivered (and signed). */
  payload: string;
  createdMs: number;
  state: AlertState;
  attempts: number;
  /**
   * When a pending alert is due. For an alert claimDue() returned, the end of the claim's lease:
   * the token extendClaim() compares.
   */
  nextAttemptMs: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredMs: number | null;
}

/** One call's share of a blocking budget, held while the call is in flight. */
export interface Reservation {
  budgetId: string;
  /** The period it counts against (src/budgets/period.ts names them). */
  periodKey: string;
  /** The limit to check against: the budget's, as the caller read it. */
  limitNanos: number;
  nanos: number;
}

/** A spend increment for one budget, from one finished call. */
export interface SpendDelta {
  budgetId: string;
  periodKey: string;
  nanos: number;
  /** The call had no known price: it counts as an unpriced request, and `nanos` is 0. */
  unpriced: boolean;
}

/** A threshold crossing to put (once) in the outbox. */
export interface AlertInsert {
  id: string;
  budgetId: string;
  periodKey: string;
  threshold: number;
  payload: string;
  createdMs: number;
  /** With a webhook the alert is `pending` and due at `createdMs`; without one, `no_webhook`. */
  hasWebhook: boolean;
}

/**
 * Names the alerts a settle fires for one budget, given its spend before and after the call
 * (after is saturated at MAX_NANOS). Runs inside the settle's transaction, and again if the
 * settle is retried: it must be pure and must not throw.
 */
export type ThresholdsCrossed = (
  budgetId: string,
  periodKey: string,
  beforeNanos: number,
  afterNanos: number,
) => AlertInsert[];

/** How a delivery attempt ended, as recordAttempt() stores it. */
export interface DeliveryAttempt {
  /**
   * `delivered`: done. `pending`: retry at `nextAttemptMs`. `failed`: given up. `cancelled`:
   * nothing to deliver to (the budget or its webhook is gone).
   */
  state: Exclude<AlertState, 'no_webhook'>;
  /** The receiver's HTTP status; null when none answered. */
  status: number | null;
  /** One of a few fixed words (`timeout`, `network`, `budget_deleted`...), never a message. */
  error: string | null;
  nextAttemptMs: number;
  deliveredMs: number | null;
}

export interface BudgetLedger {
  // Budgets

  /**
   * A number that changes whenever any handle creates, updates or deletes a budget: callers
   * cache list() under it and read it on every call, so it must be cheap.
   */
  version(): number;
  /** Every budget, oldest first (by createdMs, then id). */
  list(): Budget[];
  get(id: string): Budget | null;
  /**
   * Atomically: insert the budget, set its spend for one period when `initialSpend` is given
   * (what the usage rows say was spent before it existed), and change version(). Throws if the
   * id exists.
   */
  insert(budget: Budget, initialSpend: { periodKey: string; spend: SpendRow } | null): void;
  /**
   * Atomically: replace every field of the budget with this id but createdMs, and change
   * version(). Idempotent but for the version; no-op for an id that does not exist.
   */
  update(budget: Budget): void;
  /**
   * Atomically: delete the budget with its spend and reservations, cancel its pending alerts
   * (the others stay, for the record), and change version(). False when there was no such budget
   * (so a repeated delete is harmless).
   */
  delete(id: string): boolean;

  // Spend and reservations

  /** The budget's spend in the period; zeros when nothing was counted. */
  spend(budgetId: string, periodKey: string): SpendRow;
  /** The sum of the reservations held against the budget's period whose lease runs past `nowMs` (at most MAX_NANOS). */
  reservedNanos(budgetId: string, periodKey: string, nowMs: number): number;
  /**
   * Check and reserve, atomically, all or nothing: if for every reservation spend + live
   * reservations + its nanos stays within its `limitNanos`, insert them all for `callId`, leased
   * until `expiresMs`, and return null; otherwise insert nothing and return the budget id of the
   * first that would be exceeded. Concurrent reserves from any number of handles never let a
   * budget's spend plus reservations pass its limit. Reserving again for the same call and budget
   * replaces that reservation (a retried reserve is idempotent). Throws InvalidRecordError when a
   * budget it names no longer exists.
   */
  reserve(callId: string, reservations: Reservation[], nowMs: number, expiresMs: number): string | null;
  /**
   * Atomically: extend the leases of these calls' reservations to `expiresMs` — except a lease
   * already run out at `nowMs`, which stays out (others may have reserved what it held) — and
   * delete every reservation, of any call, whose lease has run out. Idempotent.
   */
  renew(callIds: readonly string[], expiresMs: number, nowMs: number): void;
  /** Delete a call's reservations (a call that ended without a spend to settle). Idempotent. */
  release(callId: string): void;
  /**
   * Settle a finished call, atomically: delete its reservations, add each delta to its budget's
   * spend for the period (saturating at MAX_NANOS; requests + 1; unpriced requests + 1 when
   * unpriced), and insert the alerts `crossed` names for each delta. An alert whose budget,
   * period and threshold are already in the outbox is skipped, so each threshold fires once per
   * period across every handle. Returns the number of alerts inserted.
   *
   * Not idempotent: a call settled twice counts twice (its caller commits each call once).
   * Throws InvalidRecordError, having written nothing, when a delta's budget no longer exists.
   * `mode` says how long the caller can wait for a lock: `background` fails fast (the caller
   * keeps the spend and retries), `flush` and `close` may wait.
   */
  settle(callId: string, deltas: SpendDelta[], crossed: ThresholdsCrossed, mode?: CommitMode): number;

  // Alerts and their webhook outbox

  /** Alerts, newest first (by createdMs, then id), of one budget or (null) of all, at most `limit`. */
  alerts(budgetId: string | null, limit: number): AlertRow[];
  /**
   * Claim due deliveries, atomically and exclusively: up to `limit` pending alerts whose
   * nextAttemptMs is at or before `nowMs`, in the order they fell due (then created, then
   * threshold), each leased to the caller until `nowMs + leaseMs` by moving its nextAttemptMs
   * there. No claimDue on any handle returns them again until the lease runs out; one that runs
   * out before recordAttempt() makes the alert due again for any worker (at least once). The rows
   * returned carry the lease's end as nextAttemptMs. A lease should cover one delivery: a worker
   * that claimed several extends each one's lease (extendClaim) right before sending it. Not
   * idempotent: a second claim at the same instant returns nothing.
   */
  claimDue(nowMs: number, leaseMs: number, limit: number): AlertRow[];
  /**
   * Extend a claim, atomically, if the caller still holds it: when the alert is pending and its
   * nextAttemptMs is still `leasedUntilMs` (the end of the caller's lease: nobody claimed or
   * recorded it since, even if that lease ran out), move it to `untilMs` and return true;
   * otherwise change nothing and return false — another worker owns it, and the caller must not
   * send it.
   */
  extendClaim(id: string, leasedUntilMs: number, untilMs: number): boolean;
  /**
   * Record a delivery attempt, atomically: the attempt count + 1, the outcome, and for `pending`
   * when to try again. Unconditional (the attempt happened, whoever holds the lease now), and not
   * idempotent: each call counts one attempt.
   */
  recordAttempt(id: string, attempt: DeliveryAttempt): void;

  /** Release the database. No method may be called after. */
  close(): void;
}
