/**
 * Budgets: definitions (definitions.ts), spend and reservations (spend.ts), the webhook outbox
 * (outbox.ts) and the API's views of them (views.ts), composed over one budget ledger.
 */
import { randomUUID } from 'node:crypto';
import { InvalidOptionError } from '../errors/errors.js';
import type { CallRecord } from '../record.js';
import { type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.js';
import { createDefinitions } from './definitions.js';
import { testEvent } from './events.js';
import { createOutbox } from './outbox.js';
import { periodBounds } from './period.js';
import type { AlertView, BudgetInput, BudgetPatch, BudgetView } from './schema.js';
import { type CallScope, scopeMatches } from './scope.js';
import { createSecretBox } from './secret-box.js';
import { createWebhookSender } from './sender.js';
import { type BudgetsStats, createSpend } from './spend.js';
import type { Budget, BudgetLedger } from './types.js';
import type { UsageTotals } from './usage.js';
import { createViews } from './views.js';
import { createWebhookTransport } from './webhook-transport.js';
import type { Lookup } from './webhook-url.js';

export { BudgetInputError, isBudgetInputError } from './errors.js';
export type { AlertView, BudgetView } from './schema.js';
export { type CallScope, callScopeOf } from './scope.js';
export type { BudgetsStats } from './spend.js';

interface BudgetsOptions {
  /** The budget ledger (src/common/budget-ledger.ts), e.g. src/store/sqlite-ledger.ts. */
  store: BudgetLedger;
  /**
   * The usage store (or the part of it that sums a scope's calls): for the spend already made
   * this period when a budget is created, and for forecasts.
   */
  usage?: UsageTotals | null;
  now?: () => number;
  random?: () => number;
  /** Webhooks to private, loopback and link-local addresses (tests, internal receivers). */
  allowPrivateWebhooks?: boolean;
  /**
   * Resolves webhook host names, for the check and for the connection alike (a delivery
   * connects to the very addresses that were checked). Default: `dns.lookup`.
   */
  lookup?: Lookup;
  /**
   * A fetch for deliveries instead of the built-in connection. The host name is checked before
   * it is called, but the connection cannot be pinned to the checked address. Default: none.
   */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  deliveryTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** How often the outbox is polled for due deliveries. Default 1000 ms; 0 disables the timer. */
  pollIntervalMs?: number;
  /** Spends kept while they cannot be committed (database locked or full). Default 100 000. */
  maxPendingSettles?: number;
  /**
   * How long a blocking budget's reservation counts without being renewed. The process that
   * holds it renews it (every third of this) while its call is alive, so a crashed process's
   * reservations stop counting within this. Default 2 minutes.
   */
  reservationLeaseMs?: number;
  /**
   * Key material (at least 32 characters) to store webhook secrets encrypted (AES-256-GCM).
   * Default: the `LLM_METER_SECRET_KEY` environment variable; without one they are stored clear.
   * Secrets stored clear before a key was set still work.
   */
  secretKey?: string;
  /**
   * The longest a reservation is renewed: a call that has not ended by then (a leaked stream)
   * stops holding budget one lease later. Default 1 hour.
   */
  maxReservationMs?: number;
  logger?: (message: string, error?: unknown) => void;
}

export interface Budgets {
  create(input: BudgetInput): Promise<{ budget: BudgetView; webhookSecret?: string }>;
  list(): Promise<BudgetView[]>;
  get(id: string): Promise<BudgetView | null>;
  update(id: string, patch: BudgetPatch): Promise<BudgetView | null>;
  delete(id: string): boolean;
  alerts(budgetId?: string, limit?: number): AlertView[];
  /** Send a signed `budget.test` event now; resolves with the receiver's status. */
  testAlert(id: string): Promise<{ delivered: boolean; status: number | null; error: string | null } | null>;
  /** Blocking budgets whose scope covers this call. */
  blockingFor(scope: CallScope): Budget[];
  /**
   * Reserve the projected cost against `blocking` (what blockingFor() answered for the call);
   * returns the budget that refuses, or null.
   */
  reserve(callId: string, blocking: readonly Budget[], projectedNanos: number): Budget | null;
  /**
   * Count a finished call against every budget it falls under and fire crossed thresholds.
   * Never throws: when the database cannot take it (locked, full), the spend is kept, in order,
   * and committed as soon as it can be (see stats()).
   */
  settle(record: CallRecord): void;
  /** Commit the spend kept while the database was unavailable; rejects if it still is. */
  flush(): Promise<void>;
  stats(): BudgetsStats;
  /** One pass of the delivery worker: deliver what is due. Returns the number attempted. */
  deliverDue(): Promise<number>;
  /**
   * Renew the leases of this process's reservations whose calls are still in flight (the
   * heartbeat does it on a timer). Returns the number renewed.
   */
  renewReservations(): number;
  start(): void;
  stop(): Promise<void>;
}

const DEFAULT_RESERVATION_LEASE_MS = 2 * 60_000;
const DEFAULT_MAX_RESERVATION_MS = 60 * 60_000;

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(`Expected \`${name}\` to be a positive number of milliseconds.`);
  }
  return value;
}

export function createBudgets(options: BudgetsOptions): Budgets {
  const ledger = options.store;
  const now = options.now ?? Date.now;
  const allowPrivate = options.allowPrivateWebhooks === true;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 10_000;
  const leaseMs = positiveMs('reservationLeaseMs', options.reservationLeaseMs, DEFAULT_RESERVATION_LEASE_MS);
  const maxReservationMs = positiveMs(
    'maxReservationMs',
    options.maxReservationMs,
    DEFAULT_MAX_RESERVATION_MS,
  );
  const secrets = createSecretBox(options.secretKey ?? (process.env.LLM_METER_SECRET_KEY || undefined));
  const transport = createWebhookTransport({
    allowPrivate,
    lookup: options.lookup,
    timeoutMs: deliveryTimeoutMs,
    fetch: options.fetch,
  });
  const sender = createWebhookSender({ transport, secrets, now, logger: options.logger });
  const definitions = createDefinitions({
    ledger,
    usage: options.usage,
    secrets,
    now,
    allowPrivateWebhooks: allowPrivate,
    lookup: options.lookup,
  });
  const views = createViews({ ledger, usage: options.usage, now });
  const outbox = createOutbox({
    ledger,
    sender,
    now,
    random: options.random ?? Math.random,
    backoff: options.backoff ?? DEFAULT_BACKOFF,
    deliveryTimeoutMs,
    logger: options.logger,
  });
  const spend = createSpend({
    ledger,
    budgets: () => definitions.all(),
    now,
    leaseMs,
    maxReservationMs,
    maxPending: options.maxPendingSettles ?? 100_000,
    onAlert: () => outbox.nudge(),
    logger: options.logger,
  });

  return {
    async create(input) {
      const { budget, webhookSecret } = await definitions.create(input);
      const view = await views.budget(budget);
      return webhookSecret ? { budget: view, webhookSecret } : { budget: view };
    },
    list: () => Promise.all(definitions.all().map(views.budget)),
    async get(id) {
      const budget = definitions.get(id);
      return budget ? views.budget(budget) : null;
    },
    async update(id, patch) {
      const budget = await definitions.update(id, patch);
      return budget ? views.budget(budget) : null;
    },
    delete: (id) => definitions.delete(id),
    alerts: (budgetId, limit = 100) =>
      ledger.alerts(budgetId ?? null, Math.min(Math.max(1, limit), 1000)).map(views.alert),
    async testAlert(id) {
      const budget = definitions.get(id);
      if (!budget) return null;
      if (!budget.webhookUrl) return { delivered: false, status: null, error: 'no_webhook_url' };
      const eventId = randomUUID();
      const t = now();
      const bounds = periodBounds(budget.period, budget.timezone, t);
      const body = testEvent(budget, bounds, ledger.spend(budget.id, bounds.key).spentNanos, eventId, t);
      const result = await sender.send(budget, eventId, body);
      const delivered = result.status !== null && result.status >= 200 && result.status < 300;
      return { delivered, status: result.status, error: result.error };
    },
    blockingFor: (scope) =>
      definitions.all().filter((b) => b.action === 'block' && scopeMatches(b.scope, scope)),
    reserve: (callId, blocking, projectedNanos) => spend.reserve(callId, blocking, projectedNanos),
    settle: (record) => spend.settle(record),
    flush: () => spend.flush(),
    stats: () => spend.stats(),
    deliverDue: () => outbox.deliverDue(),
    renewReservations: () => spend.renewReservations(),
    start: () => outbox.start(options.pollIntervalMs ?? 1_000),
    async stop() {
      // Polling stops first: the last settles below must not start new deliveries.
      const delivering = outbox.stop();
      await spend.stop();
      await delivering;
      await transport.close();
    },
  };
}
