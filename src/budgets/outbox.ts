/**
 * The delivery worker of the webhook outbox: claims the alerts that are due, sends them in order
 * for one budget (a receiver sees 0.5 before 0.8) and in parallel across budgets, and records
 * each attempt; a failed delivery is retried with backoff (backoff.ts) on its own schedule.
 * Delivery is at least once: receivers deduplicate by the `idempotency-key` header.
 *
 * Leases. A claim leases its alerts, so that no other worker (another process on the database,
 * or this process's next poll) sends them meanwhile. One budget's alerts go one after another,
 * each taking up to the delivery timeout, so a claimed batch can outlast any fixed lease (20
 * deliveries of 10 s against a 60 s lease once let another worker send the last ones a second
 * time). So the lease covers one delivery, not a batch: right before sending an alert the worker
 * extends its lease, on the condition that it still holds it (the ledger's extendClaim), and
 * skips an alert another worker took over meanwhile.
 */
import { type BackoffPolicy, backoffDelay, shouldRetry } from './backoff.js';
import type { WebhookSender } from './sender.js';
import type { AlertRow, BudgetLedger, DeliveryAttempt } from './types.js';

interface Outbox {
  /** One pass: deliver what is due. Returns the number of alerts claimed. */
  deliverDue(): Promise<number>;
  /** Deliver new alerts now rather than at the next poll (while polling). */
  nudge(): void;
  /** Poll every `intervalMs` (0: never). */
  start(intervalMs: number): void;
  /** Stop polling and wait for the deliveries under way. */
  stop(): Promise<void>;
}

/** The shortest lease of a claimed alert; longer when one delivery may take longer. */
const MIN_LEASE_MS = 60_000;
/** Alerts claimed per pass. */
const CLAIM_LIMIT = 20;

export function createOutbox(options: {
  ledger: BudgetLedger;
  sender: WebhookSender;
  now: () => number;
  random: () => number;
  backoff: BackoffPolicy;
  deliveryTimeoutMs: number;
  logger?: ((message: string, error?: unknown) => void) | undefined;
}): Outbox {
  const { ledger, sender, now, backoff } = options;
  /** Covers one delivery (the transport's timeout) with room to spare. */
  const leaseMs = Math.max(MIN_LEASE_MS, 2 * options.deliveryTimeoutMs);
  let timer: NodeJS.Timeout | null = null;
  const inFlight = new Set<Promise<unknown>>();
  /**
   * Outcomes of deliveries the database could not take (locked, full). Without them the alert
   * would wait out its whole lease before being retried; with them, the outcome is recorded at
   * the next pass of the worker, and a failed delivery is retried on its own schedule.
   */
  const unrecorded = new Map<string, DeliveryAttempt>();

  function recordAttempt(id: string, attempt: DeliveryAttempt): void {
    try {
      ledger.recordAttempt(id, attempt);
      unrecorded.delete(id);
    } catch (error) {
      unrecorded.set(id, attempt);
      throw error;
    }
  }

  async function deliver(alert: AlertRow): Promise<void> {
    // The alerts claimed before this one may have taken longer than its lease: renew it, unless
    // another worker has taken it over since, and then leave it to that worker.
    if (!ledger.extendClaim(alert.id, alert.nextAttemptMs, now() + leaseMs)) return;
    const budget = ledger.get(alert.budgetId);
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
    const result = await sender.send(budget, alert.id, alert.payload);
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
      nextAttemptMs: retry ? t + backoffDelay(attempts, backoff, options.random, result.retryAfterMs) : t,
      deliveredMs: null,
    });
  }

  async function deliverDue(): Promise<number> {
    for (const [id, attempt] of unrecorded) recordAttempt(id, attempt);
    const due = ledger.claimDue(now(), leaseMs, CLAIM_LIMIT);
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

  return {
    deliverDue,
    nudge() {
      if (!timer) return;
      setImmediate(() => {
        deliverDue().catch((error: unknown) => options.logger?.('llm-meter: webhook delivery failed', error));
      });
    },
    start(intervalMs) {
      if (timer || intervalMs <= 0) return;
      timer = setInterval(() => void deliverDue().catch(() => undefined), intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await Promise.allSettled([...inFlight]);
    },
  };
}
