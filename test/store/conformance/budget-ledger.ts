/**
 * The budget ledger's promises (src/common/budget-ledger.ts), written against the interface only,
 * so that every implementation runs the same assertions: test/store/sqlite.conformance.test.ts
 * runs them on SQLite, a PostgreSQL ledger on its own database. Every result is awaited, so a
 * ledger whose methods return promises runs the suite unchanged. Time is passed in, as the
 * ledger takes it: the clock of these tests is a number.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  AlertInsert,
  AlertRow,
  Budget,
  BudgetLedger,
  Reservation,
  SpendDelta,
  ThresholdsCrossed,
} from '../../../src/common/budget-ledger.js';
import { MAX_NANOS } from '../../../src/common/budget-shape.js';
import { isInvalidRecordError } from '../../../src/errors/errors.js';

/** The ledger as the suite drives it: each method may answer now or with a promise. */
export type AwaitableLedger = {
  [K in keyof BudgetLedger]: BudgetLedger[K] extends (...args: infer A) => infer R
    ? (...args: A) => R | Promise<R>
    : BudgetLedger[K];
};

export interface BudgetLedgerHarness {
  ledger: AwaitableLedger;
  /**
   * Opens another handle on the same database, as another process would; null where there can
   * be none (a private in-memory database: the suite then uses the same handle twice). The suite
   * closes what it opens.
   */
  another: (() => Promise<AwaitableLedger>) | null;
  /** Closes the ledger and whatever else the harness opened. */
  close(): Promise<void>;
}

/** Opens a new, empty database. */
export type OpenBudgetLedger = () => Promise<BudgetLedgerHarness>;

const T = Date.parse('2026-11-29T10:00:00Z');
const DAY = 'day:2026-11-29';
const NEXT_DAY = 'day:2026-11-30';
const LEASE = 60_000;
const none: ThresholdsCrossed = () => [];

export function describeBudgetLedger(name: string, open: OpenBudgetLedger): void {
  const harnesses: BudgetLedgerHarness[] = [];
  const handles: AwaitableLedger[] = [];
  afterEach(async () => {
    for (const handle of handles.splice(0)) await handle.close();
    for (const harness of harnesses.splice(0)) await harness.close();
  });
  let seq = 0;

  /** A new database; `second` is another handle on it, or the same one where there can be none. */
  async function start() {
    const harness = await open();
    harnesses.push(harness);
    const second = async (): Promise<AwaitableLedger> => {
      if (!harness.another) return harness.ledger;
      const handle = await harness.another();
      handles.push(handle);
      return handle;
    };
    return { ledger: harness.ledger, second, separate: harness.another !== null };
  }

  const budget = (over: Partial<Budget> = {}): Budget => ({
    id: `budget-${++seq}`,
    name: 'b',
    scope: {},
    period: 'day',
    timezone: 'UTC',
    limitNanos: 1e9,
    thresholds: [0.5, 0.8, 1],
    action: 'block',
    webhookUrl: 'https://hooks.example/budget',
    webhookSecret: null,
    createdMs: T,
    updatedMs: T,
    ...over,
  });
  const alert = (b: Budget, threshold: number, over: Partial<AlertInsert> = {}): AlertInsert => ({
    id: `alert-${++seq}`,
    budgetId: b.id,
    periodKey: DAY,
    threshold,
    payload: JSON.stringify({ threshold }),
    createdMs: T,
    hasWebhook: b.webhookUrl !== null,
    ...over,
  });
  /** Names an alert for every threshold of `b` the spend has reached, as the budgets do. */
  const crossing =
    (b: Budget, createdMs = T): ThresholdsCrossed =>
    (budgetId, periodKey, _before, after) =>
      b.thresholds
        .filter((th) => after >= th * b.limitNanos)
        .map((th) => alert(b, th, { budgetId, periodKey, createdMs }));
  const delta = (b: Budget, nanos: number, over: Partial<SpendDelta> = {}): SpendDelta => ({
    budgetId: b.id,
    periodKey: DAY,
    nanos,
    unpriced: false,
    ...over,
  });
  const hold = (b: Budget, nanos: number): Reservation => ({
    budgetId: b.id,
    periodKey: DAY,
    limitNanos: b.limitNanos,
    nanos,
  });
  const ids = (alerts: readonly AlertRow[]) => alerts.map((a) => a.id);

  describe(`budget ledger conformance: ${name}`, () => {
    describe('budgets', () => {
      it('insert, get and list round-trip every field; list is oldest first, then by id', async () => {
        const { ledger } = await start();
        const full = budget({
          id: 'tie-b',
          name: 'Support, daily',
          scope: {
            user: 'alice',
            project: 'support',
            feature: 'triage',
            model: 'gpt-4o',
            provider: 'openai',
          },
          period: 'month',
          timezone: 'Europe/Paris',
          limitNanos: 123_456_789,
          thresholds: [0.25, 1, 2.5],
          action: 'alert',
          webhookSecret: 'enc:v1:opaque',
          createdMs: T + 5,
          updatedMs: T + 6,
        });
        const older = budget({ scope: {}, webhookUrl: null, createdMs: T });
        const tie = budget({ id: 'tie-a', createdMs: T + 5 });
        for (const b of [full, older, tie]) await ledger.insert(b, null);
        expect(await ledger.get('tie-b')).toEqual(full);
        expect(await ledger.get(older.id)).toEqual(older);
        expect(await ledger.get('nope')).toBeNull();
        expect((await ledger.list()).map((b) => b.id)).toEqual([older.id, 'tie-a', 'tie-b']);
      });

      it('version changes with every insert, update and delete, as every handle sees it', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const seen = new Set([await ledger.version()]);
        const b = budget();
        await ledger.insert(b, null);
        seen.add(await other.version());
        await other.update({ ...b, name: 'renamed', updatedMs: T + 1 });
        seen.add(await ledger.version());
        expect(await ledger.version(), 'reading changes nothing').toBe(await other.version());
        await ledger.delete(b.id);
        seen.add(await other.version());
        expect(seen.size).toBe(4);
      });

      it('an initial spend is the period’s spend; without one, spend reads zeros', async () => {
        const { ledger } = await start();
        const b = budget();
        await ledger.insert(b, {
          periodKey: DAY,
          spend: { spentNanos: 4e8, requests: 7, unpricedRequests: 2 },
        });
        expect(await ledger.spend(b.id, DAY)).toEqual({ spentNanos: 4e8, requests: 7, unpricedRequests: 2 });
        expect(await ledger.spend(b.id, NEXT_DAY)).toEqual({
          spentNanos: 0,
          requests: 0,
          unpricedRequests: 0,
        });
        const bare = budget();
        await ledger.insert(bare, null);
        expect(await ledger.spend(bare.id, DAY)).toEqual({ spentNanos: 0, requests: 0, unpricedRequests: 0 });
      });

      it('insert of an id that exists throws and changes nothing', async () => {
        const { ledger } = await start();
        const b = budget();
        await ledger.insert(b, null);
        const version = await ledger.version();
        await expect((async () => ledger.insert({ ...b, name: 'twin' }, null))()).rejects.toThrow();
        expect((await ledger.get(b.id))?.name).toBe(b.name);
        expect(await ledger.version()).toBe(version);
      });

      it('update replaces every field but createdMs', async () => {
        const { ledger } = await start();
        const b = budget();
        await ledger.insert(b, null);
        const next = budget({
          id: b.id,
          name: 'next',
          scope: { project: 'p' },
          period: 'week',
          timezone: 'Asia/Tokyo',
          limitNanos: 5e9,
          thresholds: [1],
          action: 'alert',
          webhookUrl: null,
          webhookSecret: 'whsec_clear',
          createdMs: T + 999,
          updatedMs: T + 1000,
        });
        await ledger.update(next);
        expect(await ledger.get(b.id)).toEqual({ ...next, createdMs: T });
      });

      it('delete takes its spend and reservations, cancels its pending alerts and keeps the others', async () => {
        const { ledger } = await start();
        const b = budget();
        const kept = budget();
        await ledger.insert(b, null);
        await ledger.insert(kept, null);
        const onlyB: ThresholdsCrossed = (id, ...rest) => (id === b.id ? crossing(b)(id, ...rest) : []);
        expect(await ledger.settle('spent', [delta(b, 9e8), delta(kept, 9e8)], onlyB)).toBe(2);
        const [first] = await ledger.claimDue(T, LEASE, 1);
        await ledger.recordAttempt(first!.id, {
          state: 'delivered',
          status: 200,
          error: null,
          nextAttemptMs: T,
          deliveredMs: T,
        });
        await ledger.reserve('in-flight', [hold(b, 1e7), hold(kept, 1e7)], T, T + LEASE);

        expect(await ledger.delete(b.id)).toBe(true);
        expect(await ledger.get(b.id)).toBeNull();
        expect(await ledger.spend(b.id, DAY)).toEqual({ spentNanos: 0, requests: 0, unpricedRequests: 0 });
        expect(await ledger.reservedNanos(b.id, DAY, T)).toBe(0);
        const states = Object.fromEntries((await ledger.alerts(b.id, 10)).map((a) => [a.threshold, a.state]));
        expect(states).toEqual({ 0.5: 'delivered', 0.8: 'cancelled' });
        expect(await ledger.claimDue(T + 10 * LEASE, LEASE, 10), 'nothing left to deliver').toEqual([]);
        expect(await ledger.delete(b.id), 'already gone').toBe(false);
        // The other budget is untouched.
        expect((await ledger.spend(kept.id, DAY)).spentNanos).toBe(9e8);
        expect(await ledger.reservedNanos(kept.id, DAY, T)).toBe(1e7);
      });
    });

    describe('reservations', () => {
      it('check and reserve: all or nothing, against spend + live reservations + its own', async () => {
        const { ledger } = await start();
        const big = budget({ limitNanos: 1e9 });
        const small = budget({ limitNanos: 5e8 });
        await ledger.insert(big, null);
        await ledger.insert(small, null);
        expect(await ledger.reserve('c1', [hold(big, 4e8), hold(small, 4e8)], T, T + LEASE)).toBeNull();
        expect(await ledger.reserve('c2', [hold(big, 4e8), hold(small, 2e8)], T, T + LEASE)).toBe(small.id);
        expect(await ledger.reservedNanos(big.id, DAY, T), 'c2 reserved nothing anywhere').toBe(4e8);
        expect(
          await ledger.reserve('c3', [hold(big, 6e8)], T, T + LEASE),
          'up to the limit exactly',
        ).toBeNull();
        expect(await ledger.reserve('c4', [hold(big, 1)], T, T + LEASE)).toBe(big.id);
        // c1 cost $0.10: its reservations give way to its spend.
        await ledger.settle('c1', [delta(big, 1e8), delta(small, 1e8)], none);
        expect(await ledger.reservedNanos(big.id, DAY, T)).toBe(6e8);
        expect(await ledger.reserve('c5', [hold(big, 3e8)], T, T + LEASE)).toBeNull();
        expect(await ledger.reserve('c6', [hold(big, 1)], T, T + LEASE)).toBe(big.id);
        expect(await ledger.reserve('c7', [], T, T + LEASE), 'nothing to reserve').toBeNull();
      });

      it('reserving again for the same call and budget replaces its reservation', async () => {
        const { ledger } = await start();
        const b = budget();
        await ledger.insert(b, null);
        await ledger.reserve('c', [hold(b, 5e8)], T, T + LEASE);
        await ledger.reserve('c', [hold(b, 2e8)], T, T + LEASE);
        expect(await ledger.reservedNanos(b.id, DAY, T)).toBe(2e8);
      });

      it('a reservation counts until its lease ends; renew extends live leases only; release ends it', async () => {
        const { ledger } = await start();
        const b = budget();
        await ledger.insert(b, null);
        await ledger.reserve('a', [hold(b, 1e8)], T, T + 100);
        expect(await ledger.reservedNanos(b.id, DAY, T + 99)).toBe(1e8);
        expect(await ledger.reservedNanos(b.id, DAY, T + 100), 'the lease ran out').toBe(0);

        await ledger.renew(['a'], T + 200, T + 50);
        expect(await ledger.reservedNanos(b.id, DAY, T + 150), 'renewed while alive').toBe(1e8);
        await ledger.renew(['a'], T + 1_000, T + 200);
        expect(await ledger.reservedNanos(b.id, DAY, T + 500), 'a lease that ran out stays out').toBe(0);
        expect(await ledger.reservedNanos(b.id, DAY, T + 150), 'and was deleted').toBe(0);

        await ledger.reserve('b', [hold(b, 2e8)], T, T + LEASE);
        await ledger.release('b');
        await ledger.release('b');
        expect(await ledger.reservedNanos(b.id, DAY, T)).toBe(0);
        await ledger.renew([], T + LEASE, T);
      });

      it('absurd sizes are refused, not thrown; NaN reserves nothing; sums saturate', async () => {
        const { ledger } = await start();
        const b = budget({ limitNanos: 1e18 });
        await ledger.insert(b, null);
        expect(await ledger.reserve('inf', [hold(b, Number.POSITIVE_INFINITY)], T, T + LEASE)).toBe(b.id);
        expect(await ledger.reserve('big', [hold(b, 1e30)], T, T + LEASE)).toBe(b.id);
        expect(await ledger.reserve('nan', [hold(b, Number.NaN)], T, T + LEASE)).toBeNull();
        expect(await ledger.reserve('neg', [hold(b, -5)], T, T + LEASE)).toBeNull();
        expect(await ledger.reservedNanos(b.id, DAY, T)).toBe(0);
      });

      it('concurrent reserves from two handles never pass the limit', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const b = budget({ limitNanos: 1e9 });
        await ledger.insert(b, null);
        const results = await Promise.all(
          Array.from({ length: 40 }, async (_, i) =>
            (i % 2 === 0 ? ledger : other).reserve(`c-${i}`, [hold(b, 1e8)], T, T + LEASE),
          ),
        );
        expect(results.filter((r) => r === null)).toHaveLength(10);
        expect(results.filter((r) => r === b.id)).toHaveLength(30);
        expect(await other.reservedNanos(b.id, DAY, T)).toBe(1e9);
      });
    });

    describe('settle', () => {
      it('adds the spend, counts requests and unpriced ones, and releases the call on every budget', async () => {
        const { ledger } = await start();
        const a = budget();
        const b = budget();
        await ledger.insert(a, null);
        await ledger.insert(b, null);
        await ledger.reserve('c1', [hold(a, 5e8), hold(b, 5e8)], T, T + LEASE);
        expect(await ledger.settle('c1', [delta(a, 3e8), delta(b, 0, { unpriced: true })], none)).toBe(0);
        expect(await ledger.spend(a.id, DAY)).toEqual({ spentNanos: 3e8, requests: 1, unpricedRequests: 0 });
        expect(await ledger.spend(b.id, DAY)).toEqual({ spentNanos: 0, requests: 1, unpricedRequests: 1 });
        expect(await ledger.reservedNanos(a.id, DAY, T)).toBe(0);
        expect(await ledger.reservedNanos(b.id, DAY, T)).toBe(0);
        await ledger.settle('c2', [delta(a, 1e8, { periodKey: NEXT_DAY })], none, 'flush');
        expect(await ledger.spend(a.id, NEXT_DAY)).toEqual({
          spentNanos: 1e8,
          requests: 1,
          unpricedRequests: 0,
        });
        expect((await ledger.spend(a.id, DAY)).spentNanos, 'periods apart').toBe(3e8);
      });

      it('a spend saturates at MAX_NANOS; a call costing more than any int64 is counted', async () => {
        const { ledger } = await start();
        const b = budget();
        await ledger.insert(b, null);
        for (const [i, nanos] of [6e18, 6e18, 1e30, 1].entries())
          await ledger.settle(`c-${i}`, [delta(b, nanos)], none);
        expect(await ledger.spend(b.id, DAY)).toEqual({
          spentNanos: MAX_NANOS,
          requests: 4,
          unpricedRequests: 0,
        });
      });

      it('crossed sees the spend before and after; each threshold fires once per period, on any handle', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const b = budget();
        await ledger.insert(b, null);
        const seen: Array<[number, number]> = [];
        const watching: ThresholdsCrossed = (...args) => {
          seen.push([args[2], args[3]]);
          return crossing(b)(...args);
        };
        expect(await ledger.settle('c1', [delta(b, 6e8)], watching), '0.5').toBe(1);
        expect(await ledger.settle('c2', [delta(b, 3e8)], watching), '0.8 (0.5 is in already)').toBe(1);
        expect(await other.settle('c3', [delta(b, 2e8)], crossing(b)), '1, from the other handle').toBe(1);
        expect(await other.settle('c4', [delta(b, 2e8)], crossing(b)), 'all in already').toBe(0);
        expect(seen).toEqual([
          [0, 6e8],
          [6e8, 9e8],
        ]);
        const alerts = await ledger.alerts(b.id, 10);
        expect(alerts.map((a) => a.threshold).sort()).toEqual([0.5, 0.8, 1]);
        expect(alerts.every((a) => a.state === 'pending' && a.attempts === 0 && a.periodKey === DAY)).toBe(
          true,
        );
        // The next period starts from zero and fires again.
        expect(await ledger.settle('c5', [delta(b, 6e8, { periodKey: NEXT_DAY })], crossing(b))).toBe(1);
        expect((await ledger.alerts(b.id, 10)).filter((a) => a.periodKey === NEXT_DAY)).toHaveLength(1);
      });

      it('concurrent settles crossing one threshold on two handles fire it once', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const b = budget({ thresholds: [0.5] });
        await ledger.insert(b, null);
        const fired = await Promise.all(
          Array.from({ length: 20 }, async (_, i) =>
            (i % 2 === 0 ? ledger : other).settle(`c-${i}`, [delta(b, 1e8)], crossing(b)),
          ),
        );
        expect(fired.reduce((n, f) => n + f, 0)).toBe(1);
        expect(await ledger.alerts(b.id, 10)).toHaveLength(1);
        expect((await other.spend(b.id, DAY)).requests).toBe(20);
      });

      it('an alert without a webhook is kept as no_webhook and never claimed', async () => {
        const { ledger } = await start();
        const b = budget({ webhookUrl: null, thresholds: [0.5] });
        await ledger.insert(b, null);
        expect(await ledger.settle('c', [delta(b, 6e8)], crossing(b))).toBe(1);
        expect((await ledger.alerts(b.id, 10)).map((a) => a.state)).toEqual(['no_webhook']);
        expect(await ledger.claimDue(T + 10 * LEASE, LEASE, 10)).toEqual([]);
      });

      it('a spend for a budget that no longer exists throws InvalidRecordError and writes nothing', async () => {
        const { ledger } = await start();
        const gone = budget();
        const b = budget();
        await ledger.insert(gone, null);
        await ledger.insert(b, null);
        await ledger.reserve('c', [hold(b, 1e8)], T, T + LEASE);
        await ledger.delete(gone.id);
        const error = await (async () => ledger.settle('c', [delta(b, 1e8), delta(gone, 1e8)], none))().catch(
          (e: unknown) => e,
        );
        expect(isInvalidRecordError(error), String(error)).toBe(true);
        expect(await ledger.spend(b.id, DAY)).toEqual({ spentNanos: 0, requests: 0, unpricedRequests: 0 });
        expect(await ledger.reservedNanos(b.id, DAY, T), 'the reservation stays').toBe(1e8);
      });
    });

    describe('alerts and the outbox', () => {
      /** A budget with a webhook whose `thresholds` have all fired at `createdMs`. */
      async function fired(ledger: AwaitableLedger, thresholds: number[], createdMs = T) {
        const b = budget({ thresholds });
        await ledger.insert(b, null);
        await ledger.settle(`fire-${++seq}`, [delta(b, b.limitNanos)], crossing(b, createdMs));
        const alerts = [...(await ledger.alerts(b.id, 100))].sort((x, y) => x.threshold - y.threshold);
        return { b, alerts };
      }

      it('alerts lists newest first, of one budget or of all, up to `limit`', async () => {
        const { ledger } = await start();
        const early = await fired(ledger, [0.5], T);
        const late = await fired(ledger, [0.5, 1], T + 10);
        expect((await ledger.alerts(null, 10)).map((a) => a.createdMs)).toEqual([T + 10, T + 10, T]);
        expect(ids(await ledger.alerts(early.b.id, 10))).toEqual(ids(early.alerts));
        expect(await ledger.alerts(late.b.id, 1)).toHaveLength(1);
        expect(await ledger.alerts(null, 2)).toHaveLength(2);
        const [row] = early.alerts;
        expect(row).toMatchObject({
          budgetId: early.b.id,
          periodKey: DAY,
          threshold: 0.5,
          payload: JSON.stringify({ threshold: 0.5 }),
          createdMs: T,
          state: 'pending',
          attempts: 0,
          nextAttemptMs: T,
          lastStatus: null,
          lastError: null,
          deliveredMs: null,
        });
      });

      it('claimDue leases what is due, in the order it fell due; what is not due waits', async () => {
        const { ledger } = await start();
        const first = await fired(ledger, [0.5, 0.8], T);
        const later = await fired(ledger, [1], T + 10);
        const claimed = await ledger.claimDue(T + 5, LEASE, 10);
        expect(ids(claimed)).toEqual(ids(first.alerts));
        expect(
          claimed.every((a) => a.nextAttemptMs === T + 5 + LEASE),
          'the lease ends there',
        ).toBe(true);
        expect(ids(await ledger.claimDue(T + 20, LEASE, 10))).toEqual(ids(later.alerts));
        expect(await ledger.claimDue(T + 30, LEASE, 10), 'all leased').toEqual([]);
        const limited = await fired(ledger, [0.25, 0.5, 0.75], T + 40);
        expect(ids(await ledger.claimDue(T + 50, LEASE, 2))).toEqual(ids(limited.alerts.slice(0, 2)));
      });

      it('a claim is exclusive until its lease runs out; then another worker takes it over', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const { alerts } = await fired(ledger, [0.5]);
        const [mine] = await ledger.claimDue(T, LEASE, 10);
        expect(mine?.id).toBe(alerts[0]!.id);
        expect(await other.claimDue(T + LEASE - 1, LEASE, 10)).toEqual([]);
        expect(await ledger.claimDue(T + LEASE - 1, LEASE, 10), 'nor to the holder itself').toEqual([]);
        const [taken] = await other.claimDue(T + LEASE, LEASE, 10);
        expect(taken?.id, 'taken over when the lease ran out').toBe(mine!.id);
        expect(taken?.nextAttemptMs).toBe(T + 2 * LEASE);
        expect(
          await ledger.extendClaim(mine!.id, mine!.nextAttemptMs, T + 3 * LEASE),
          'no longer the holder',
        ).toBe(false);
      });

      it('concurrent claims from two handles hand each alert to exactly one of them', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const { alerts } = await fired(ledger, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
        const claims = await Promise.all(
          Array.from({ length: 8 }, async (_, i) => (i % 2 === 0 ? ledger : other).claimDue(T, LEASE, 3)),
        );
        const claimed = claims.flatMap(ids);
        expect(claimed).toHaveLength(10);
        expect(new Set(claimed)).toEqual(new Set(ids(alerts)));
      });

      it('extendClaim moves the lease for its holder only, even after the lease ran out if nobody took it', async () => {
        const { ledger, second } = await start();
        const other = await second();
        await fired(ledger, [0.5]);
        const [held] = await ledger.claimDue(T, 1_000, 10);
        const id = held!.id;
        expect(held!.nextAttemptMs).toBe(T + 1_000);
        expect(await ledger.extendClaim(id, T + 1_000, T + 2_500), 'ran out at T+1000, nobody took it').toBe(
          true,
        );
        expect(await other.claimDue(T + 2_000, 1_000, 10), 'the extended lease holds').toEqual([]);
        expect(await ledger.extendClaim(id, T + 1_000, T + 9_000), 'a stale lease').toBe(false);
        const [taken] = await other.claimDue(T + 2_500, 1_000, 10);
        expect(taken?.id).toBe(id);
        expect(await ledger.extendClaim(id, T + 2_500, T + 9_000), 'taken over').toBe(false);
        expect(await other.extendClaim(id, T + 3_500, T + 9_000), 'the new holder can').toBe(true);
      });

      it('recordAttempt: pending comes back when due, delivered and failed leave the outbox', async () => {
        const { ledger } = await start();
        const { alerts } = await fired(ledger, [0.5, 1]);
        const [retried, givenUp] = alerts;
        await ledger.claimDue(T, LEASE, 10);
        await ledger.recordAttempt(retried!.id, {
          state: 'pending',
          status: 503,
          error: null,
          nextAttemptMs: T + 5_000,
          deliveredMs: null,
        });
        await ledger.recordAttempt(givenUp!.id, {
          state: 'failed',
          status: 400,
          error: null,
          nextAttemptMs: T,
          deliveredMs: null,
        });
        expect(await ledger.claimDue(T + 4_999, LEASE, 10)).toEqual([]);
        const [again] = await ledger.claimDue(T + 5_000, LEASE, 10);
        expect(again).toMatchObject({ id: retried!.id, attempts: 1, lastStatus: 503, state: 'pending' });
        await ledger.recordAttempt(retried!.id, {
          state: 'delivered',
          status: 204,
          error: null,
          nextAttemptMs: T + 5_001,
          deliveredMs: T + 5_001,
        });
        expect(await ledger.claimDue(T + 100 * LEASE, LEASE, 10)).toEqual([]);
        expect(await ledger.extendClaim(retried!.id, T + 5_000 + LEASE, T + 9 * LEASE), 'delivered').toBe(
          false,
        );
        const byId = new Map((await ledger.alerts(null, 10)).map((a) => [a.id, a]));
        expect(byId.get(retried!.id)).toMatchObject({
          state: 'delivered',
          attempts: 2,
          lastStatus: 204,
          deliveredMs: T + 5_001,
        });
        expect(byId.get(givenUp!.id)).toMatchObject({ state: 'failed', attempts: 1, lastStatus: 400 });
      });

      it('deliveries that outlast one lease are each sent once: a lease covers one delivery, not a batch', async () => {
        const { ledger, second } = await start();
        const other = await second();
        const { alerts } = await fired(
          ledger,
          Array.from({ length: 20 }, (_, i) => (i + 1) / 20),
        );
        // One worker claims a budget's 20 alerts at once; each takes the transport's 10 s timeout.
        const batch = await ledger.claimDue(T, LEASE, 20);
        expect(ids(batch)).toEqual(ids(alerts));
        const sentBy = { first: [] as string[], second: [] as string[] };
        const deliver = async (who: AwaitableLedger, alert: AlertRow, now: number) =>
          who.recordAttempt(alert.id, {
            state: 'delivered',
            status: 200,
            error: null,
            nextAttemptMs: now,
            deliveredMs: now,
          });
        for (const [k, alert] of batch.entries()) {
          const now = T + k * 10_000;
          // The other worker polls, as it does every second.
          for (const taken of await other.claimDue(now, LEASE, 20)) {
            if (await other.extendClaim(taken.id, taken.nextAttemptMs, now + LEASE)) {
              sentBy.second.push(taken.id);
              await deliver(other, taken, now);
            }
          }
          // The first worker renews the lease of the alert it is about to send, if it still holds it.
          if (await ledger.extendClaim(alert.id, alert.nextAttemptMs, now + LEASE)) {
            sentBy.first.push(alert.id);
            await deliver(ledger, alert, now);
          }
        }
        expect(sentBy.first.length, 'the first worker sent the first ones').toBeGreaterThan(0);
        expect(sentBy.second.length, 'the second took over the rest').toBeGreaterThan(0);
        expect([...sentBy.first, ...sentBy.second].sort(), 'every alert exactly once').toEqual(
          ids(alerts).sort(),
        );
      });
    });
  });
}
