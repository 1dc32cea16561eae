/**
 * The budget ledger (src/common/budget-ledger.ts) on SQLite: budgets, their spend, in-flight
 * reservations and the alert outbox, in the same file as the usage rows. Every write is one
 * BEGIN IMMEDIATE transaction, so several processes sharing the file see one spend and fire each
 * threshold once.
 */
import type {
  AlertRow,
  Budget,
  BudgetLedger,
  Reservation,
  SpendDelta,
  SpendRow,
  ThresholdsCrossed,
} from '../common/budget-ledger.js';
import { type AlertState, clampNanos, MAX_NANOS } from '../common/budget-shape.js';
import type { CommitMode } from '../common/write-behind.js';
import { InvalidRecordError } from '../errors/errors.js';
import { createLockWaits, type LockWaits, openConnection, type SqliteDatabase } from './connection.js';
import { migrate } from './migrate.js';
import { isEnvironmentError, isRecordError } from './sqlite-errors.js';

interface BudgetDbRow {
  id: string;
  name: string;
  scope_user: string | null;
  scope_project: string | null;
  scope_feature: string | null;
  scope_model: string | null;
  scope_provider: string | null;
  period: Budget['period'];
  timezone: string;
  limit_nanos: number;
  thresholds: string;
  action: Budget['action'];
  webhook_url: string | null;
  webhook_secret: string | null;
  created_ms: number;
  updated_ms: number;
}

interface AlertDbRow {
  id: string;
  budget_id: string;
  period_key: string;
  threshold: number;
  payload: string;
  created_ms: number;
  state: AlertState;
  attempts: number;
  next_attempt_ms: number;
  last_status: number | null;
  last_error: string | null;
  delivered_ms: number | null;
}

function toBudget(r: BudgetDbRow): Budget {
  const scope: Budget['scope'] = {};
  if (r.scope_user !== null) scope.user = r.scope_user;
  if (r.scope_project !== null) scope.project = r.scope_project;
  if (r.scope_feature !== null) scope.feature = r.scope_feature;
  if (r.scope_model !== null) scope.model = r.scope_model;
  if (r.scope_provider !== null) scope.provider = r.scope_provider;
  return {
    id: r.id,
    name: r.name,
    scope,
    period: r.period,
    timezone: r.timezone,
    limitNanos: r.limit_nanos,
    thresholds: JSON.parse(r.thresholds) as number[],
    action: r.action,
    webhookUrl: r.webhook_url,
    webhookSecret: r.webhook_secret,
    createdMs: r.created_ms,
    updatedMs: r.updated_ms,
  };
}

function toAlert(r: AlertDbRow): AlertRow {
  return {
    id: r.id,
    budgetId: r.budget_id,
    periodKey: r.period_key,
    threshold: r.threshold,
    payload: r.payload,
    createdMs: r.created_ms,
    state: r.state,
    attempts: r.attempts,
    nextAttemptMs: r.next_attempt_ms,
    lastStatus: r.last_status,
    lastError: r.last_error,
    deliveredMs: r.delivered_ms,
  };
}

function budgetParams(b: Budget) {
  return {
    id: b.id,
    name: b.name,
    scope_user: b.scope.user ?? null,
    scope_project: b.scope.project ?? null,
    scope_feature: b.scope.feature ?? null,
    scope_model: b.scope.model ?? null,
    scope_provider: b.scope.provider ?? null,
    period: b.period,
    timezone: b.timezone,
    limit_nanos: b.limitNanos,
    thresholds: JSON.stringify(b.thresholds),
    action: b.action,
    webhook_url: b.webhookUrl,
    webhook_secret: b.webhookSecret,
    created_ms: b.createdMs,
    updated_ms: b.updatedMs,
  };
}

const VERSION_KEY = 'budgets_version';
/** Rows written before leases (expires_ms = 0) count for this long after created_ms, as they did. */
const LEGACY_RESERVATION_TTL_MS = 60 * 60_000;
/** A reservation counts while its lease runs (or, from before leases, for an hour). */
const LIVE = `(expires_ms > @now OR (expires_ms = 0 AND created_ms > @now - ${LEGACY_RESERVATION_TTL_MS}))`;

/** A write SQLite refuses for what it holds (a budget deleted meanwhile) can never succeed. */
function refusedAs(what: string, error: unknown): unknown {
  if (isEnvironmentError(error) || !isRecordError(error)) return error;
  return new InvalidRecordError(`${what} was refused: ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
  });
}

export interface SqliteLedgerOptions {
  /** Database file; ':memory:' for a private in-memory database. */
  path: string;
  /** How long edits, reservations and flushes wait for another process's write lock. Default 5000. */
  busyTimeoutMs?: number | undefined;
}

export function openSqliteLedger(options: SqliteLedgerOptions): BudgetLedger {
  const db: SqliteDatabase = openConnection(options.path, { busyTimeoutMs: options.busyTimeoutMs });
  try {
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }
  const waits = createLockWaits(db, options.busyTimeoutMs);
  const q = {
    version: db.prepare<[string], { value: number }>('SELECT value FROM store_meta WHERE key = ?'),
    bump: db.prepare<[string]>(
      'INSERT INTO store_meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1',
    ),
    list: db.prepare<[], BudgetDbRow>('SELECT * FROM budgets ORDER BY created_ms, id'),
    get: db.prepare<[string], BudgetDbRow>('SELECT * FROM budgets WHERE id = ?'),
    insert: db.prepare(
      `INSERT INTO budgets (id, name, scope_user, scope_project, scope_feature, scope_model, scope_provider,
         period, timezone, limit_nanos, thresholds, action, webhook_url, webhook_secret, created_ms, updated_ms)
       VALUES (@id, @name, @scope_user, @scope_project, @scope_feature, @scope_model, @scope_provider,
         @period, @timezone, @limit_nanos, @thresholds, @action, @webhook_url, @webhook_secret, @created_ms, @updated_ms)`,
    ),
    update: db.prepare(
      `UPDATE budgets SET name = @name, scope_user = @scope_user, scope_project = @scope_project,
         scope_feature = @scope_feature, scope_model = @scope_model, scope_provider = @scope_provider,
         period = @period, timezone = @timezone, limit_nanos = @limit_nanos, thresholds = @thresholds,
         action = @action, webhook_url = @webhook_url, webhook_secret = @webhook_secret, updated_ms = @updated_ms
       WHERE id = @id`,
    ),
    delete: db.prepare<[string]>('DELETE FROM budgets WHERE id = ?'),
    cancelAlerts: db.prepare<[string]>(
      "UPDATE budget_alerts SET state = 'cancelled' WHERE budget_id = ? AND state = 'pending'",
    ),
    spend: db.prepare<[string, string], { spent_nanos: number; requests: number; unpriced_requests: number }>(
      'SELECT spent_nanos, requests, unpriced_requests FROM budget_spend WHERE budget_id = ? AND period_key = ?',
    ),
    setSpend: db.prepare<[string, string, number, number, number]>(
      `INSERT INTO budget_spend (budget_id, period_key, spent_nanos, requests, unpriced_requests) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (budget_id, period_key) DO UPDATE SET spent_nanos = excluded.spent_nanos,
         requests = excluded.requests, unpriced_requests = excluded.unpriced_requests`,
    ),
    // Saturating: min(spent, MAX − added) + added never passes MAX_NANOS, so the addition
    // cannot overflow SQLite's 64-bit integers however much has been spent.
    addSpend: db.prepare<[string, string, number, number]>(
      `INSERT INTO budget_spend (budget_id, period_key, spent_nanos, requests, unpriced_requests) VALUES (?, ?, ?, 1, ?)
       ON CONFLICT (budget_id, period_key) DO UPDATE
         SET spent_nanos = min(spent_nanos, ${MAX_NANOS} - excluded.spent_nanos) + excluded.spent_nanos,
         requests = requests + 1, unpriced_requests = unpriced_requests + excluded.unpriced_requests`,
    ),
    // TOTAL, a float, where SUM could overflow and fail every reservation against the budget.
    reserved: db.prepare<[{ budgetId: string; periodKey: string; now: number }], { total: number }>(
      `SELECT TOTAL(nanos) AS total FROM budget_reservations
       WHERE budget_id = @budgetId AND period_key = @periodKey AND ${LIVE}`,
    ),
    reserveOne: db.prepare<[string, string, string, number, number, number]>(
      `INSERT OR REPLACE INTO budget_reservations (call_id, budget_id, period_key, nanos, created_ms, expires_ms)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    release: db.prepare<[string]>('DELETE FROM budget_reservations WHERE call_id = ?'),
    // A lease that already ran out stays out: others may have reserved what it held.
    renew: db.prepare<[{ callId: string; expiresMs: number; now: number }]>(
      'UPDATE budget_reservations SET expires_ms = @expiresMs WHERE call_id = @callId AND expires_ms > @now',
    ),
    dropExpired: db.prepare<[{ now: number }]>(`DELETE FROM budget_reservations WHERE NOT ${LIVE}`),
    insertAlert: db.prepare(
      `INSERT INTO budget_alerts (id, budget_id, period_key, threshold, payload, created_ms, state, next_attempt_ms)
       VALUES (@id, @budgetId, @periodKey, @threshold, @payload, @createdMs, @state, @createdMs)
       ON CONFLICT (budget_id, period_key, threshold) DO NOTHING`,
    ),
    alertsAll: db.prepare<[number], AlertDbRow>(
      'SELECT * FROM budget_alerts ORDER BY created_ms DESC, id LIMIT ?',
    ),
    alertsFor: db.prepare<[string, number], AlertDbRow>(
      'SELECT * FROM budget_alerts WHERE budget_id = ? ORDER BY created_ms DESC, id LIMIT ?',
    ),
    due: db.prepare<[number, number], AlertDbRow>(
      "SELECT * FROM budget_alerts WHERE state = 'pending' AND next_attempt_ms <= ? ORDER BY next_attempt_ms, created_ms, threshold LIMIT ?",
    ),
    // A compare-and-set on next_attempt_ms: the claim (or its extension) of whoever saw it last.
    claim: db.prepare<[number, string, number]>(
      "UPDATE budget_alerts SET next_attempt_ms = ? WHERE id = ? AND state = 'pending' AND next_attempt_ms = ?",
    ),
    attempt: db.prepare(
      `UPDATE budget_alerts SET state = @state, attempts = attempts + 1, last_status = @status, last_error = @error,
         next_attempt_ms = @nextAttemptMs, delivered_ms = @deliveredMs WHERE id = @id`,
    ),
  };

  const spendOf = (budgetId: string, periodKey: string): SpendRow => {
    const row = q.spend.get(budgetId, periodKey);
    return row
      ? { spentNanos: row.spent_nanos, requests: row.requests, unpricedRequests: row.unpriced_requests }
      : { spentNanos: 0, requests: 0, unpricedRequests: 0 };
  };
  const reservedOf = (budgetId: string, periodKey: string, nowMs: number) =>
    Math.min(MAX_NANOS, q.reserved.get({ budgetId, periodKey, now: nowMs })?.total ?? 0);

  const insertTx = db.transaction(
    (budget: Budget, initial: { periodKey: string; spend: SpendRow } | null) => {
      q.insert.run(budgetParams(budget));
      if (initial) {
        const s = initial.spend;
        q.setSpend.run(
          budget.id,
          initial.periodKey,
          clampNanos(s.spentNanos),
          s.requests,
          s.unpricedRequests,
        );
      }
      q.bump.run(VERSION_KEY);
    },
  );
  const updateTx = db.transaction((budget: Budget) => {
    q.update.run(budgetParams(budget));
    q.bump.run(VERSION_KEY);
  });
  const deleteTx = db.transaction((id: string) => {
    const changed = q.delete.run(id).changes > 0;
    q.cancelAlerts.run(id);
    q.bump.run(VERSION_KEY);
    return changed;
  });
  const reserveTx = db.transaction(
    (callId: string, reservations: Reservation[], nowMs: number, expiresMs: number) => {
      for (const r of reservations) {
        const used = spendOf(r.budgetId, r.periodKey).spentNanos + reservedOf(r.budgetId, r.periodKey, nowMs);
        if (used + clampNanos(r.nanos) > r.limitNanos) return r.budgetId;
      }
      for (const r of reservations)
        q.reserveOne.run(callId, r.budgetId, r.periodKey, clampNanos(r.nanos), nowMs, expiresMs);
      return null;
    },
  );
  const settleTx = db.transaction((callId: string, deltas: SpendDelta[], crossed: ThresholdsCrossed) => {
    q.release.run(callId);
    let fired = 0;
    for (const d of deltas) {
      const before = spendOf(d.budgetId, d.periodKey).spentNanos;
      const nanos = clampNanos(d.nanos);
      q.addSpend.run(d.budgetId, d.periodKey, nanos, d.unpriced ? 1 : 0);
      for (const alert of crossed(d.budgetId, d.periodKey, before, Math.min(MAX_NANOS, before + nanos))) {
        const state: AlertState = alert.hasWebhook ? 'pending' : 'no_webhook';
        fired += q.insertAlert.run({ ...alert, state }).changes;
      }
    }
    return fired;
  });
  const renewTx = db.transaction((callIds: readonly string[], expiresMs: number, nowMs: number) => {
    for (const callId of callIds) q.renew.run({ callId, expiresMs, now: nowMs });
    q.dropExpired.run({ now: nowMs });
  });
  const claimTx = db.transaction((nowMs: number, leaseMs: number, limit: number) => {
    const claimed: AlertRow[] = [];
    const until = nowMs + leaseMs;
    for (const row of q.due.all(nowMs, limit)) {
      if (q.claim.run(until, row.id, row.next_attempt_ms).changes === 1)
        claimed.push({ ...toAlert(row), nextAttemptMs: until });
    }
    return claimed;
  });
  /** Settles and the outbox are queued and retried by their owner: brief unless flushing. */
  const settleWait: Record<CommitMode, LockWaits['brief']> = {
    background: waits.brief,
    flush: waits.patient,
    close: waits.patient,
  };

  return {
    version: () => q.version.get(VERSION_KEY)?.value ?? 0,
    list: () => q.list.all().map(toBudget),
    get(id) {
      const row = q.get.get(id);
      return row ? toBudget(row) : null;
    },
    // Edits and reservations answer a waiting caller: patient. Settles and the outbox are
    // queued and retried by the service: brief (connection.ts, LockWaits).
    insert: (budget, initial) => waits.patient(() => insertTx.immediate(budget, initial)),
    update: (budget) => waits.patient(() => updateTx.immediate(budget)),
    delete: (id) => waits.patient(() => deleteTx.immediate(id)),
    spend: spendOf,
    reservedNanos: reservedOf,
    reserve(callId, reservations, nowMs, expiresMs) {
      if (reservations.length === 0) return null;
      try {
        return waits.patient(() => reserveTx.immediate(callId, reservations, nowMs, expiresMs));
      } catch (error) {
        throw refusedAs(`The reservation of call ${callId}`, error);
      }
    },
    renew: (callIds, expiresMs, nowMs) => waits.brief(() => renewTx.immediate(callIds, expiresMs, nowMs)),
    release: (callId) => {
      waits.brief(() => q.release.run(callId));
    },
    settle(callId, deltas, crossed, mode = 'background') {
      try {
        return settleWait[mode](() => settleTx.immediate(callId, deltas, crossed));
      } catch (error) {
        throw refusedAs(`The spend of call ${callId}`, error);
      }
    },
    alerts: (budgetId, limit) =>
      (budgetId === null ? q.alertsAll.all(limit) : q.alertsFor.all(budgetId, limit)).map(toAlert),
    claimDue: (nowMs, leaseMs, limit) => waits.brief(() => claimTx.immediate(nowMs, leaseMs, limit)),
    extendClaim: (id, leasedUntilMs, untilMs) =>
      waits.brief(() => q.claim.run(untilMs, id, leasedUntilMs).changes === 1),
    recordAttempt(id, result) {
      waits.brief(() => q.attempt.run({ id, ...result }));
    },
    close() {
      db.close();
    },
  };
}
