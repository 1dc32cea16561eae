/**
 * The budget ledger on a real SQLite file: sums that cannot overflow however large the rows
 * on disk, and reservations that stop counting soon after the call holding them is gone.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createBudgets } from '../../src/budgets/service.js';
import { MAX_NANOS } from '../../src/budgets/types.js';
import { createMeter } from '../../src/index.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const HUGE = 6_000_000_000_000_000_000n; // 6e18: two of them overflow a 64-bit sum
const DAY_MS = 86_400_000;

/** Usage and rollup rows of 6e18 tokens and nano-dollars each, written straight to the file. */
function writeHugeRows(path: string, nowMs: number): void {
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  const usage = db.prepare(
    `INSERT INTO usage (id, time_ms, end_ms, provider, operation, model, user, project, tags, stream, tool_count,
       outcome, finish_reasons, tool_calls, chunks, duration_ms, cost_nanos, input_tokens, output_tokens)
     VALUES (?, ?, ?, 'openai', 'chat', 'gpt-4o-mini', 'alice', 'support', '{}', 0, 0, 'ok', '[]', 0, 0, 1, ?, ?, ?)`,
  );
  for (const id of ['huge-1', 'huge-2']) usage.run(id, BigInt(nowMs), BigInt(nowMs), HUGE, HUGE, HUGE);
  const rollup = (table: string, time: string, ms: number, user: string) =>
    db
      .prepare(
        `INSERT INTO ${table} (${time}, model, provider, user, project, feature, operation, outcome, requests, errors,
           input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens, cost_nanos,
           unpriced_requests, duration_ms_sum, latency_hist, ttft_hist)
         VALUES (?, 'gpt-4o-mini', 'openai', ?, 'support', '', 'chat', 'ok', 1, 0, ?, 0, 0, ?, 0, ?, 0, 1, x'', x'')`,
      )
      .run(BigInt(ms), user, HUGE, HUGE, HUGE);
  // Two whole days before today: read from the daily rollup by a summary over a long range.
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
  for (const user of ['alice', 'bob']) {
    rollup('usage_daily', 'day_ms', today - 2 * DAY_MS, user);
    rollup('usage_hourly', 'hour_ms', today - 2 * DAY_MS, user);
  }
  db.close();
}

function open(path: string, clock: { t: number }) {
  const usage = openSqliteStore({ path, now: () => clock.t });
  const store = openSqliteLedger({ path });
  const budgets = createBudgets({ store, usage, now: () => clock.t, pollIntervalMs: 0 });
  cleanups.push(async () => {
    await budgets.stop();
    store.close();
    await usage.close();
  });
  return { usage, store, budgets };
}

describe('budget sums do not overflow', () => {
  it('budgets over usage rows of 6e18 are created and read; the spend saturates', async () => {
    const path = newDb();
    const clock = { t: Date.parse('2026-11-29T10:30:00Z') };
    open(path, clock); // creates the schema
    await cleanups.pop()!();
    writeHugeRows(path, clock.t - 60_000);
    const { budgets } = open(path, clock);

    for (const period of ['day', 'month', 'total'] as const) {
      const { budget } = await budgets.create({ name: `huge ${period}`, period, limit_usd: 100 });
      expect(budget.spent_usd, period).toBe(MAX_NANOS / 1e9);
      expect(budget.remaining_usd, period).toBe(0);
      expect(Number.isFinite(budget.forecast_usd ?? 0), period).toBe(true);
    }
    const scoped = await budgets.create({
      name: 'alice',
      scope: { user: 'alice' },
      period: 'total',
      limit_usd: 1,
    });
    expect(scoped.budget.spent_usd).toBe(MAX_NANOS / 1e9);
    expect((await budgets.list()).every((b) => b.spent_usd === MAX_NANOS / 1e9)).toBe(true);
  });

  it('a saturated spend takes more calls, and a call costing more than any int64 is counted', async () => {
    const clock = { t: Date.parse('2026-11-29T10:30:00Z') };
    const { budgets } = open(newDb(), clock);
    const { budget } = await budgets.create({ name: 'b', period: 'day', limit_usd: 1 });
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 6e18 }));
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 6e18 }));
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 1e30 }));
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 1 }));
    await budgets.flush();
    expect(budgets.stats()).toMatchObject({ settled: 4, failed: 0, invalid: 0, dropped: 0 });
    const view = await budgets.get(budget.id);
    expect(view).toMatchObject({ spent_usd: MAX_NANOS / 1e9, requests: 4 });
    expect(
      budgets
        .alerts(budget.id)
        .map((a) => a.threshold)
        .sort(),
    ).toEqual([0.5, 0.8, 1]);
  });

  it('reservations of absurd sizes are refused, not thrown; their sum cannot overflow', async () => {
    const path = newDb();
    const clock = { t: Date.parse('2026-11-29T10:30:00Z') };
    const { budgets, store } = open(path, clock);
    const { budget } = await budgets.create({ name: 'cap', period: 'day', limit_usd: 1e9, action: 'block' });
    const blocking = budgets.blockingFor({ provider: 'openai', models: ['gpt-4o'] });
    expect(budgets.reserve('inf', blocking, Number.POSITIVE_INFINITY)?.id).toBe(budget.id);
    expect(budgets.reserve('big', blocking, 1e30)?.id).toBe(budget.id);
    expect(budgets.reserve('nan', blocking, Number.NaN)).toBeNull();
    // Rows no process would write, as a damaged or hostile file might hold them.
    const db = new Database(path);
    db.defaultSafeIntegers(true);
    const insert = db.prepare(
      'INSERT INTO budget_reservations (call_id, budget_id, period_key, nanos, created_ms) VALUES (?, ?, ?, ?, ?)',
    );
    for (const id of ['r1', 'r2']) insert.run(id, budget.id, 'day:2026-11-29', HUGE, BigInt(clock.t));
    db.close();
    expect(store.reservedNanos(budget.id, 'day:2026-11-29', clock.t)).toBe(MAX_NANOS);
    expect(budgets.reserve('next', blocking, 1)?.id).toBe(budget.id);
    expect((await budgets.get(budget.id))?.reserved_usd).toBe(MAX_NANOS / 1e9);
  });
});

describe('reservations are leased, renewed while their call is alive, released when it is gone', () => {
  const LEASE = 2 * 60_000;
  const scope = { user: 'alice', provider: 'openai', models: ['gpt-4o-mini'] };

  /** Two processes' worth of budgets over one file, on one controllable clock. */
  async function twoHolders(options: { maxReservationMs?: number } = {}) {
    const path = newDb();
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const make = () => {
      const store = openSqliteLedger({ path });
      const budgets = createBudgets({ store, now: () => clock.t, pollIntervalMs: 0, ...options });
      cleanups.push(async () => {
        await budgets.stop();
        store.close();
      });
      return budgets;
    };
    const a = make();
    const b = make();
    await a.create({ name: 'cap', scope: { user: 'alice' }, period: 'day', limit_usd: 1, action: 'block' });
    const reserve = (who: typeof a, id: string) =>
      who.reserve(id, who.blockingFor(scope), 600_000_000)?.name ?? null;
    return { a, b, clock, reserve };
  }

  it('a holder that stops renewing (a crashed process) lets go within one lease, not an hour', async () => {
    const { a, b, clock, reserve } = await twoHolders();
    expect(reserve(a, 'a-1')).toBeNull();
    expect(reserve(b, 'b-1'), 'held: $0.60 + $0.60 > $1').toBe('cap');
    clock.t += LEASE - 1;
    expect(reserve(b, 'b-2'), 'still within its lease').toBe('cap');
    clock.t += 1;
    expect(reserve(b, 'b-3'), 'the lease ran out').toBeNull();
    expect((await b.list())[0]).toMatchObject({ reserved_usd: 0.6 });
    // A late renewal does not bring back a lease that ran out (b-3 holds the budget now).
    expect(a.renewReservations()).toBe(1);
    expect((await b.list())[0]).toMatchObject({ reserved_usd: 0.6 });
  });

  it('the holder renews the lease while its call is alive; settling releases it at once', async () => {
    const { a, b, clock, reserve } = await twoHolders();
    expect(reserve(a, 'a-1')).toBeNull();
    for (let beat = 0; beat < 20; beat++) {
      clock.t += LEASE / 3;
      expect(a.renewReservations()).toBe(1);
      expect(reserve(b, `b-${beat}`), `beat ${beat}`).toBe('cap');
    }
    a.settle(makeRecord({ id: 'a-1', startMs: clock.t, user: 'alice', costNanos: 100_000_000 }));
    expect(a.renewReservations()).toBe(0);
    expect(reserve(b, 'b-after')).toBeNull();
    expect((await b.list())[0]).toMatchObject({ spent_usd: 0.1, reserved_usd: 0.6 });
  });

  it('a call that never ends is renewed at most maxReservationMs, then let go', async () => {
    const { a, b, clock, reserve } = await twoHolders({ maxReservationMs: 10 * 60_000 });
    expect(reserve(a, 'a-leaked')).toBeNull();
    let beats = 0;
    while (beats < 100 && reserve(b, `b-${beats}`) === 'cap') {
      clock.t += LEASE / 3;
      a.renewReservations();
      beats++;
    }
    const heldMs = beats * (LEASE / 3);
    expect(heldMs, 'held past its maximum').toBeGreaterThanOrEqual(10 * 60_000);
    expect(heldMs, 'let go one lease after it').toBeLessThanOrEqual(10 * 60_000 + LEASE);
  });

  it('a holder that stops releases what it holds; a call refused or outside every budget releases too', async () => {
    const { a, b, clock, reserve } = await twoHolders();
    expect(reserve(a, 'a-1')).toBeNull();
    await a.stop();
    expect(reserve(b, 'b-1'), 'released at stop, no lease to wait out').toBeNull();

    // b-1 ends blocked (say, by a later gate): nothing to settle, the reservation goes.
    b.settle(makeRecord({ id: 'b-1', startMs: clock.t, user: 'alice', outcome: 'blocked', costNanos: 0 }));
    expect(reserve(b, 'b-2')).toBeNull();
    // b-2 turns out to be outside every budget (its budget was narrowed meanwhile).
    b.settle(makeRecord({ id: 'b-2', startMs: clock.t, user: 'bob', costNanos: 0 }));
    expect((await b.list())[0]).toMatchObject({ reserved_usd: 0, spent_usd: 0 });
  });
});

describe('the lease options', () => {
  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])(
    'reservationLeaseMs %s is refused, naming it',
    (bad) => {
      const path = newDb();
      const store = openSqliteLedger({ path });
      cleanups.push(() => store.close());
      expect(() => createBudgets({ store, reservationLeaseMs: bad })).toThrow(/`reservationLeaseMs`/);
      expect(() => createMeter({ database: path, reservationLeaseMs: bad })).toThrow(/`reservationLeaseMs`/);
    },
  );

  it('createMeter passes reservationLeaseMs to the ledger', async () => {
    const path = newDb();
    const meter = createMeter({ database: path, webhookPollIntervalMs: 0, reservationLeaseMs: 1234 });
    cleanups.push(() => meter.shutdown());
    await meter.budgets!.create({ name: 'cap', period: 'day', limit_usd: 1, action: 'block' });
    const before = Date.now();
    meter.budgets!.reserve('call', meter.budgets!.blockingFor({ provider: 'openai', models: [] }), 1);
    const db = new Database(path, { readonly: true });
    const row = db.prepare('SELECT created_ms, expires_ms FROM budget_reservations').get() as {
      created_ms: number;
      expires_ms: number;
    };
    db.close();
    expect(row.created_ms).toBeGreaterThanOrEqual(before);
    expect(row.expires_ms - row.created_ms).toBe(1234);
  });
});
