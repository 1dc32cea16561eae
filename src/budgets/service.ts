import { randomBytes, randomUUID } from 'node:crypto';
import { InvalidOptionError } from '../errors/errors.js';
import { parseRetryAfter } from '../errors/retry-after.js';
import type { CallRecord } from '../record.js';
import { createPendingQueue } from '../store/queue.js';
import type { UsageStore } from '../store/types.js';
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF, shouldRetry } from './backoff.js';
import { forecastNanos, type PeriodBounds, periodBounds } from './period.js';
import { type BudgetInput, type BudgetPatch, budgetInputSchema, budgetPatchSchema } from './schema.js';
import { createSecretBox } from './secret-box.js';
import { SIGNATURE_HEADER, sign } from './signature.js';
import type {
  AlertInsert,
  AlertRow,
  Budget,
  BudgetScope,
  BudgetStore,
  Reservation,
  SpendDelta,
} from './types.js';
import { SCOPE_KEYS } from './types.js';
import { createWebhookTransport } from './webhook-transport.js';
import { checkWebhookUrl, type Lookup } from './webhook-url.js';

/** A budget as the API shows it: figures for the current period, never the secret. */
export interface BudgetView {
  id: string;
  name: string;
  scope: BudgetScope;
  period: Budget['period'];
  timezone: string;
  limit_usd: number;
  thresholds: number[];
  action: Budget['action'];
  webhook_url: string | null;
  has_webhook_secret: boolean;
  spent_usd: number;
  reserved_usd: number;
  remaining_usd: number;
  requests: number;
  unpriced_requests: number;
  period_start: string;
  period_end: string | null;
  forecast_usd: number | null;
  created_at: string;
  updated_at: string;
}

export interface AlertView {
  id: string;
  budget_id: string;
  period: string;
  threshold: number;
  state: AlertRow['state'];
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
  payload: unknown;
}

/** Invalid budget input: `field` names what to fix (the API answers 400 with it). */
export class BudgetInputError extends Error {
  override name = 'BudgetInputError' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallScope {
  user?: string | undefined;
  project?: string | undefined;
  feature?: string | undefined;
  provider: string;
  /** The models the call names; null when it names none that can be trusted: every model's budgets apply. */
  models: (string | null)[] | null;
}

export interface BudgetsOptions {
  store: BudgetStore;
  /** For the spend already made this period when a budget is created, and for forecasts. */
  usage?: UsageStore | null;
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

const LEASE_MS = 60_000;
const DEFAULT_RESERVATION_LEASE_MS = 2 * 60_000;
const DEFAULT_MAX_RESERVATION_MS = 60 * 60_000;
const MAX_SETTLE_RETRY_MS = 5_000;
const SETTLES_PER_TURN = 200;
const RECENT_WINDOW_MS = 6 * 3_600_000;

const iso = (ms: number) => new Date(ms).toISOString();
const usd = (nanos: number) => nanos / 1e9;
const toNanos = (dollars: number) => Math.round(dollars * 1e9);

function scopeMatches(scope: BudgetScope, call: CallScope): boolean {
  if (scope.user !== undefined && scope.user !== call.user) return false;
  if (scope.project !== undefined && scope.project !== call.project) return false;
  if (scope.feature !== undefined && scope.feature !== call.feature) return false;
  if (scope.provider !== undefined && scope.provider !== call.provider) return false;
  if (scope.model !== undefined && call.models !== null && !call.models.includes(scope.model)) return false;
  return true;
}

export function callScopeOf(record: CallRecord): CallScope {
  return {
    user: record.attribution.user,
    project: record.attribution.project,
    feature: record.attribution.feature,
    provider: record.provider,
    models: [record.requestModel, record.responseModel],
  };
}

/** A spend waiting to be committed; `crossed` names its alerts and the keys to mark fired. */
interface PendingSettle {
  callId: string;
  deltas: SpendDelta[];
  crossed: (firing: string[]) => Parameters<BudgetStore['settle']>[2];
  webhook: boolean;
}

/** The spend itself is at fault (its budget was deleted meanwhile): retrying cannot help. */
function isPermanent(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT');
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(`Expected \`${name}\` to be a positive number of milliseconds.`);
  }
  return value;
}

function firstIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): BudgetInputError {
  const issue = error.issues[0];
  const field = issue?.path.map(String).join('.') || 'body';
  const message = issue?.message.startsWith('Expected')
    ? issue.message
    : `Invalid \`${field}\`: ${issue?.message}`;
  return new BudgetInputError(field, message);
}

export function createBudgets(options: BudgetsOptions): Budgets {
  const { store } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 10_000;
  const allowPrivate = options.allowPrivateWebhooks === true;
  const secrets = createSecretBox(options.secretKey ?? (process.env.LLM_METER_SECRET_KEY || undefined));
  /** The additional data a budget's sealed secret is bound to. */
  const secretContext = (budgetId: string) => `llm-meter/budget/${budgetId}/webhook_secret`;
  const transport = createWebhookTransport({
    allowPrivate,
    lookup: options.lookup,
    timeoutMs: deliveryTimeoutMs,
    fetch: options.fetch,
  });
  let cache: { version: number; budgets: Budget[] } | null = null;
  let timer: NodeJS.Timeout | null = null;
  const inFlight = new Set<Promise<unknown>>();
  const fired = new Set<string>();
  const pendingSettles = createPendingQueue<PendingSettle>(options.maxPendingSettles ?? 100_000);
  const counters = { settled: 0, failed: 0, dropped: 0, invalid: 0 };
  let settleFailures = 0;
  let settleRetry: NodeJS.Timeout | null = null;
  const leaseMs = positiveMs('reservationLeaseMs', options.reservationLeaseMs, DEFAULT_RESERVATION_LEASE_MS);
  const maxReservationMs = positiveMs(
    'maxReservationMs',
    options.maxReservationMs,
    DEFAULT_MAX_RESERVATION_MS,
  );
  /** Calls of this process holding reservations, with when they reserved. */
  const held = new Map<string, number>();
  let heartbeat: NodeJS.Timeout | null = null;
  let stopped = false;

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
      store.renew([...held.keys()], t + leaseMs, t);
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
      store.release(callId);
    } catch (error) {
      options.logger?.('llm-meter: budget reservation not released (its lease will run out)', error);
    }
  }

  /**
   * One commit. `fired` learns its thresholds only once they are in the outbox (marked before,
   * a commit that failed would lose the alert for good). True when it fired an alert to deliver.
   */
  function commit(item: PendingSettle, patient = false): boolean {
    const firing: string[] = [];
    store.settle(item.callId, item.deltas, item.crossed(firing), patient);
    for (const key of firing) fired.add(key);
    return item.webhook && firing.length > 0;
  }

  /**
   * Commit kept spends in order, at most `max` of them (each is its own transaction: a long
   * backlog is committed a turn of the event loop at a time). 'failed' when the database still
   * refuses, 'more' when some are left. `patient` for flush and stop, off the callers' path.
   */
  function drainSettles(max: number, patient = false): 'done' | 'more' | 'failed' {
    let webhook = false;
    let result: 'done' | 'more' | 'failed' = 'done';
    for (let n = 0; pendingSettles.size > 0; n++) {
      if (n >= max) {
        result = 'more';
        break;
      }
      const item = pendingSettles.peek(1)[0]!;
      try {
        webhook = commit(item, patient) || webhook;
        counters.settled++;
      } catch (error) {
        if (!isPermanent(error)) {
          counters.failed++;
          settleFailures++;
          options.logger?.('llm-meter: budget spend not committed yet', error);
          result = 'failed';
          break;
        }
        counters.invalid++;
        options.logger?.('llm-meter: budget spend refused', error);
      }
      pendingSettles.consume(1);
    }
    if (result !== 'failed') settleFailures = 0;
    if (webhook) nudgeDelivery();
    return result;
  }

  /** Retry with backoff while the database refuses; continue on the next turn while it takes them. */
  function scheduleSettles(): void {
    if (settleRetry) return;
    const retry = settleFailures > 0;
    const delay = retry ? Math.min(MAX_SETTLE_RETRY_MS, 50 * 2 ** Math.min(settleFailures, 10)) : 0;
    settleRetry = setTimeout(() => {
      settleRetry = null;
      if (drainSettles(SETTLES_PER_TURN) !== 'done') scheduleSettles();
    }, delay);
    settleRetry.unref();
  }

  /** Deliver a new alert now rather than at the next poll; its failures are the poll's to retry. */
  function nudgeDelivery(): void {
    if (!timer) return;
    setImmediate(() => {
      deliverDue().catch((error: unknown) => options.logger?.('llm-meter: webhook delivery failed', error));
    });
  }

  /** Budgets change rarely; one cheap version read per use keeps every process in step. */
  function budgets(): Budget[] {
    const version = store.version();
    if (!cache || cache.version !== version) cache = { version, budgets: store.list() };
    return cache.budgets;
  }

  async function periodSpendFromUsage(scope: BudgetScope, fromMs: number, toMs: number) {
    if (!options.usage || toMs <= fromMs) return { spentNanos: 0, requests: 0, unpricedRequests: 0 };
    const filters: Record<string, string> = {};
    for (const key of SCOPE_KEYS) if (scope[key] !== undefined) filters[key] = scope[key]!;
    await options.usage.flush();
    const { totals } = await options.usage.summary({ fromMs, toMs, filters });
    return {
      spentNanos: toNanos(totals.cost_usd ?? 0),
      requests: totals.requests,
      unpricedRequests: totals.unpriced_requests,
    };
  }

  async function view(budget: Budget): Promise<BudgetView> {
    const t = now();
    const bounds = periodBounds(budget.period, budget.timezone, t);
    const spend = store.spend(budget.id, bounds.key);
    const reserved = store.reservedNanos(budget.id, bounds.key, t);
    let forecast: number | null = null;
    if (bounds.end !== null) {
      const windowStart = Math.max(bounds.start, t - RECENT_WINDOW_MS);
      const recent = options.usage
        ? (await periodSpendFromUsage(budget.scope, windowStart, t)).spentNanos
        : spend.spentNanos;
      forecast = forecastNanos(spend.spentNanos, recent, t - windowStart, bounds, t);
    }
    return {
      id: budget.id,
      name: budget.name,
      scope: budget.scope,
      period: budget.period,
      timezone: budget.timezone,
      limit_usd: usd(budget.limitNanos),
      thresholds: budget.thresholds,
      action: budget.action,
      webhook_url: budget.webhookUrl,
      has_webhook_secret: budget.webhookSecret !== null,
      spent_usd: usd(spend.spentNanos),
      reserved_usd: usd(reserved),
      remaining_usd: usd(Math.max(0, budget.limitNanos - spend.spentNanos)),
      requests: spend.requests,
      unpriced_requests: spend.unpricedRequests,
      period_start: iso(bounds.start),
      period_end: bounds.end === null ? null : iso(bounds.end),
      forecast_usd: forecast === null ? null : usd(forecast),
      created_at: iso(budget.createdMs),
      updated_at: iso(budget.updatedMs),
    };
  }

  async function checkUrl(url: string | null | undefined): Promise<void> {
    if (url === null || url === undefined) return;
    const problem = await checkWebhookUrl(url, { allowPrivate, lookup: options.lookup });
    if (problem) throw new BudgetInputError('webhook_url', problem);
  }

  function alertPayload(
    budget: Budget,
    bounds: PeriodBounds,
    threshold: number,
    spentNanos: number,
    id: string,
  ) {
    return JSON.stringify({
      id,
      type: 'budget.threshold',
      budget: {
        id: budget.id,
        name: budget.name,
        scope: budget.scope,
        period: budget.period,
        timezone: budget.timezone,
        action: budget.action,
      },
      threshold,
      spent_usd: usd(spentNanos),
      limit_usd: usd(budget.limitNanos),
      period_start: iso(bounds.start),
      period_end: bounds.end === null ? null : iso(bounds.end),
      created_at: iso(now()),
    });
  }

  async function post(budget: Budget, id: string, body: string) {
    const url = budget.webhookUrl!;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'llm-meter-webhooks/0.1',
      'idempotency-key': id,
    };
    if (budget.webhookSecret !== null) {
      const secret = secrets.open(budget.webhookSecret, secretContext(budget.id));
      // Sealed under another key, or none configured here: an unsigned delivery would only be
      // refused, so none is made; the alert waits for a process that can sign it.
      if (secret === null) {
        options.logger?.(
          `llm-meter: the webhook secret of budget ${budget.id} cannot be decrypted (is LLM_METER_SECRET_KEY set to the key it was stored with?)`,
        );
        return { status: null, error: 'secret_unavailable', retryAfterMs: null, permanent: false };
      }
      headers[SIGNATURE_HEADER.toLowerCase()] = sign(secret, body, Math.floor(now() / 1000));
    }
    const result = await transport.send(url, headers, body);
    if (result.status === null)
      return { status: null, error: result.error, retryAfterMs: null, permanent: result.permanent };
    // Seconds or an HTTP date, as RFC 9110 allows (and retry-after-ms where a receiver sends it).
    const retryAfterMs = parseRetryAfter(result.retryAfter.ms, result.retryAfter.header, now());
    return { status: result.status, error: null, retryAfterMs, permanent: false };
  }

  type Attempt = Parameters<BudgetStore['recordAttempt']>[1];
  /**
   * Outcomes of deliveries the database could not take (locked, full). Without them the alert
   * would wait out its whole lease before being retried; with them, the outcome is recorded at
   * the next pass of the worker, and a failed delivery is retried on its own schedule.
   */
  const unrecorded = new Map<string, Attempt>();

  function recordAttempt(id: string, attempt: Attempt): void {
    try {
      store.recordAttempt(id, attempt);
      unrecorded.delete(id);
    } catch (error) {
      unrecorded.set(id, attempt);
      throw error;
    }
  }

  async function deliver(alert: AlertRow): Promise<void> {
    const budget = store.get(alert.budgetId);
    if (!budget?.webhookUrl) {
      recordAttempt(alert.id, {
        state: 'cancelled',
        status: null,
        error: 'budget_deleted',
        nextAttemptMs: now(),
        deliveredMs: null,
      });
      return;
    }
    const result = await post(budget, alert.id, alert.payload);
    const attempts = alert.attempts + 1;
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    const t = now();
    if (ok) {
      recordAttempt(alert.id, {
        state: 'delivered',
        status: result.status,
        error: null,
        nextAttemptMs: t,
        deliveredMs: t,
      });
      return;
    }
    const retry = !result.permanent && shouldRetry(result.status) && attempts < backoff.maxAttempts;
    recordAttempt(alert.id, {
      state: retry ? 'pending' : 'failed',
      status: result.status,
      error: result.error,
      nextAttemptMs: retry ? t + backoffDelay(attempts, backoff, random, result.retryAfterMs) : t,
      deliveredMs: null,
    });
  }

  async function deliverDue(): Promise<number> {
    for (const [id, attempt] of unrecorded) recordAttempt(id, attempt);
    const due = store.claimDue(now(), LEASE_MS, 20);
    // In order for one budget (a receiver sees 0.5 before 0.8), in parallel across budgets.
    const byBudget = new Map<string, AlertRow[]>();
    for (const alert of due) byBudget.set(alert.budgetId, [...(byBudget.get(alert.budgetId) ?? []), alert]);
    const work = Promise.all(
      [...byBudget.values()].map(async (alerts) => {
        for (const alert of alerts) {
          await deliver(alert).catch((error: unknown) =>
            options.logger?.('llm-meter: webhook delivery failed', error),
          );
        }
      }),
    );
    inFlight.add(work);
    try {
      await work;
    } finally {
      inFlight.delete(work);
    }
    return due.length;
  }

  const service: Budgets = {
    async create(input) {
      const parsed = budgetInputSchema.safeParse(input);
      if (!parsed.success) throw firstIssue(parsed.error);
      const v = parsed.data;
      await checkUrl(v.webhook_url);
      const generated =
        v.webhook_url && !v.webhook_secret ? `whsec_${randomBytes(24).toString('base64url')}` : null;
      const t = now();
      const id = randomUUID();
      const secret = v.webhook_secret ?? generated;
      const budget: Budget = {
        id,
        name: v.name,
        scope: v.scope,
        period: v.period,
        timezone: v.timezone,
        limitNanos: toNanos(v.limit_usd),
        thresholds: v.thresholds,
        action: v.action,
        webhookUrl: v.webhook_url ?? null,
        webhookSecret: secret === null ? null : secrets.seal(secret, secretContext(id)),
        createdMs: t,
        updatedMs: t,
      };
      const bounds = periodBounds(budget.period, budget.timezone, t);
      const spend = await periodSpendFromUsage(budget.scope, bounds.start, t + 1);
      store.insert(budget, spend.requests > 0 ? { periodKey: bounds.key, spend } : null);
      const result: { budget: BudgetView; webhookSecret?: string } = { budget: await view(budget) };
      if (generated) result.webhookSecret = generated;
      return result;
    },
    async list() {
      return Promise.all(budgets().map(view));
    },
    async get(id) {
      const budget = store.get(id);
      return budget ? view(budget) : null;
    },
    async update(id, patch) {
      const parsed = budgetPatchSchema.safeParse(patch);
      if (!parsed.success) throw firstIssue(parsed.error);
      const existing = store.get(id);
      if (!existing) return null;
      const p = parsed.data;
      await checkUrl(p.webhook_url);
      const next: Budget = {
        ...existing,
        name: p.name ?? existing.name,
        scope: p.scope ?? existing.scope,
        period: p.period ?? existing.period,
        timezone: p.timezone ?? existing.timezone,
        limitNanos: p.limit_usd !== undefined ? toNanos(p.limit_usd) : existing.limitNanos,
        thresholds: p.thresholds ?? existing.thresholds,
        action: p.action ?? existing.action,
        webhookUrl: p.webhook_url !== undefined ? p.webhook_url : existing.webhookUrl,
        webhookSecret:
          p.webhook_secret !== undefined
            ? secrets.seal(p.webhook_secret, secretContext(existing.id))
            : existing.webhookSecret,
        updatedMs: now(),
      };
      store.update(next);
      return view(next);
    },
    delete: (id) => store.delete(id),
    alerts(budgetId, limit = 100) {
      return store.alerts(budgetId ?? null, Math.min(Math.max(1, limit), 1000)).map((a) => ({
        id: a.id,
        budget_id: a.budgetId,
        period: a.periodKey,
        threshold: a.threshold,
        state: a.state,
        attempts: a.attempts,
        last_status: a.lastStatus,
        last_error: a.lastError,
        next_attempt_at: a.state === 'pending' ? iso(a.nextAttemptMs) : null,
        delivered_at: a.deliveredMs === null ? null : iso(a.deliveredMs),
        created_at: iso(a.createdMs),
        payload: JSON.parse(a.payload) as unknown,
      }));
    },
    async testAlert(id) {
      const budget = store.get(id);
      if (!budget) return null;
      if (!budget.webhookUrl) return { delivered: false, status: null, error: 'no_webhook_url' };
      const eventId = randomUUID();
      const bounds = periodBounds(budget.period, budget.timezone, now());
      const body = JSON.stringify({
        ...JSON.parse(
          alertPayload(budget, bounds, 0, store.spend(budget.id, bounds.key).spentNanos, eventId),
        ),
        type: 'budget.test',
      });
      const result = await post(budget, eventId, body);
      const delivered = result.status !== null && result.status >= 200 && result.status < 300;
      return { delivered, status: result.status, error: result.error };
    },
    blockingFor(scope) {
      return budgets().filter((b) => b.action === 'block' && scopeMatches(b.scope, scope));
    },
    reserve(callId, blocking, projectedNanos) {
      if (blocking.length === 0) return null;
      const t = now();
      const reservations: Reservation[] = blocking.map((b) => ({
        budgetId: b.id,
        periodKey: periodBounds(b.period, b.timezone, t).key,
        limitNanos: b.limitNanos,
        nanos: projectedNanos,
      }));
      const refusedBy = store.reserve(callId, reservations, t, t + leaseMs);
      if (refusedBy === null) {
        hold(callId, t);
        return null;
      }
      return blocking.find((b) => b.id === refusedBy) ?? null;
    },
    settle(record) {
      if (record.outcome === 'blocked') return release(record.id);
      const scope = callScopeOf(record);
      const matching = budgets().filter((b) => scopeMatches(b.scope, scope));
      if (matching.length === 0) return release(record.id);
      // The settle below releases the reservation in the same transaction as the spend.
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
      const item: PendingSettle = {
        callId: record.id,
        deltas,
        webhook: matching.some((b) => b.webhookUrl),
        crossed:
          (firing) =>
          (budgetId, periodKey, _before, after): AlertInsert[] => {
            const entry = byId.get(budgetId);
            if (!entry) return [];
            const { budget, bounds } = entry;
            // Every threshold at or under the spend; the store's unique key keeps each to one alert
            // per period (across processes), and `fired` spares this process the repeated inserts.
            return budget.thresholds
              .filter((th) => after >= th * budget.limitNanos && !fired.has(`${budgetId}|${periodKey}|${th}`))
              .map((threshold) => {
                firing.push(`${budgetId}|${periodKey}|${threshold}`);
                const id = randomUUID();
                return {
                  id,
                  budgetId,
                  periodKey,
                  threshold,
                  payload: alertPayload(budget, bounds, threshold, after, id),
                  createdMs: now(),
                  hasWebhook: budget.webhookUrl !== null,
                };
              });
          },
      };
      // Behind spends still waiting, this one waits too: order is kept, and a locked database is
      // not asked again by every finished call.
      if (pendingSettles.size === 0) {
        try {
          const alerted = commit(item);
          counters.settled++;
          if (alerted) nudgeDelivery();
          return;
        } catch (error) {
          if (isPermanent(error)) {
            counters.invalid++;
            options.logger?.('llm-meter: budget spend refused', error);
            return;
          }
          counters.failed++;
          settleFailures++;
          options.logger?.('llm-meter: budget spend not committed yet', error);
        }
      }
      counters.dropped += pendingSettles.push(item);
      scheduleSettles();
    },
    async flush() {
      if (settleRetry) clearTimeout(settleRetry);
      settleRetry = null;
      for (;;) {
        const result = drainSettles(SETTLES_PER_TURN, true);
        if (result === 'done') return;
        if (result === 'failed') {
          scheduleSettles();
          throw new Error(`Could not commit the spend of ${pendingSettles.size} calls to their budgets.`);
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    },
    stats: () => ({ ...counters, pending: pendingSettles.size }),
    deliverDue,
    renewReservations,
    start() {
      const interval = options.pollIntervalMs ?? 1_000;
      if (timer || interval <= 0) return;
      timer = setInterval(() => void deliverDue().catch(() => undefined), interval);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      // Calls still holding budget when the process stops will never settle here.
      for (const callId of [...held.keys()]) release(callId);
      if (settleRetry) clearTimeout(settleRetry);
      settleRetry = null;
      // A last chance for spend kept during an outage; what still cannot be committed is lost.
      if (drainSettles(Number.POSITIVE_INFINITY, true) === 'failed')
        counters.dropped += pendingSettles.clear();
      await Promise.allSettled([...inFlight]);
      await transport.close();
    },
  };
  return service;
}
