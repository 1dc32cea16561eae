/**
 * The outbox's delivery worker (src/budgets/outbox.ts) with two processes' worth of budgets on
 * one SQLite file and one controllable clock: a claimed batch whose deliveries outlast the
 * claim's lease is still delivered once per alert, though the other process polls meanwhile.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Budgets, createBudgets } from '../../src/budgets/service.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

function open(path: string, clock: { t: number }, fetch: Fetch): Budgets {
  const store = openSqliteLedger({ path });
  const budgets = createBudgets({
    store,
    now: () => clock.t,
    allowPrivateWebhooks: true,
    pollIntervalMs: 0,
    deliveryTimeoutMs: 10_000,
    fetch,
  });
  cleanups.push(async () => {
    await budgets.stop();
    store.close();
  });
  return budgets;
}

describe('the delivery worker', () => {
  it("a budget's 20 alerts at the 10 s timeout each (200 s > the 60 s claim) reach the receiver once each", async () => {
    const path = newDb();
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const received: string[] = [];
    const sent = { first: 0, second: 0 };
    const receive = (who: keyof typeof sent, init: RequestInit) => {
      sent[who]++;
      received.push((init.headers as Record<string, string>)['idempotency-key']!);
      return new Response(null, { status: 204 });
    };
    let other: Budgets | null = null;
    // Every delivery of this process takes the whole timeout, and the other process polls meanwhile.
    const slow: Fetch = async (_url, init) => {
      clock.t += 10_000;
      await other?.deliverDue();
      return receive('first', init);
    };
    const budgets = open(path, clock, slow);
    other = open(path, clock, async (_url, init) => receive('second', init));

    const { budget } = await budgets.create({
      name: 'many thresholds',
      period: 'day',
      limit_usd: 1,
      thresholds: Array.from({ length: 20 }, (_, i) => (i + 1) / 20),
      webhook_url: 'http://127.0.0.1:9/hook',
    });
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 1e9 }));
    expect(await budgets.deliverDue(), 'one claim of all 20').toBe(20);

    const alerts = budgets.alerts(budget.id);
    expect(alerts).toHaveLength(20);
    expect(received.length, 'no alert sent twice').toBe(new Set(received).size);
    expect(new Set(received)).toEqual(new Set(alerts.map((a) => a.id)));
    expect(alerts.every((a) => a.state === 'delivered' && a.attempts === 1)).toBe(true);
    // The first process sent what its lease covered; once it ran out, the other took over the rest.
    expect(sent).toEqual({ first: 6, second: 14 });
  });
});
