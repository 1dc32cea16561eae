/**
 * The budget ledger on a real SQLite file: sums that cannot overflow however large the rows
 * on disk, and reservations that stop counting soon after the call holding them is gone.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createBudgets } from '../src/budgets/service.js';
import { MAX_NANOS } from '../src/budgets/types.js';
import { openBudgetStore } from '../src/store/budgets.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { useTempDb } from './fixtures/store-tmp.js';
import { makeRecord } from './helpers/records.js';

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
  const store = openBudgetStore({ path });
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
