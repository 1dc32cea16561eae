/**
 * Budgets on a real SQLite file whose writes fail: the disk refusing writes (the process's file
 * size limit lowered with prlimit, so writes fail with EFBIG as on a full disk) and another
 * connection holding the write lock. A spend that could not be committed is kept and applied
 * once the database is back (nothing lost, each threshold still fires once); while it is
 * down, finished calls do not each wait for the lock; and no failure of the delivery worker
 * escapes as an unhandled rejection (which would end the host process).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createBudgets } from '../../src/budgets/service.js';
import type { BudgetLedger } from '../../src/common/budget-ledger.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Writes beyond `bytes` into any file fail (EFBIG), for this process, until lifted. */
function limitFileSize(bytes: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${bytes}:unlimited`]);
}

/** The budget store, counting the calls that reach SQLite (each may wait a busy timeout). */
function counted(store: BudgetLedger) {
  const counts = { settle: 0, claimDue: 0 };
  const wrapped: BudgetLedger = {
    ...store,
    settle: (...args) => {
      counts.settle++;
      return store.settle(...args);
    },
    claimDue: (...args) => {
      counts.claimDue++;
      return store.claimDue(...args);
    },
  };
  return { store: wrapped, counts };
}

const call = (id: string, costNanos: number) =>
  makeRecord({ id, startMs: Date.now(), costNanos, project: 'faults' });

describe('budgets when the database refuses writes', () => {
  it.skipIf(!hasPrlimit)(
    'a spend that could not be committed is applied when the disk is back; its threshold fires once',
    async () => {
      const path = newDb();
      const raw = openSqliteLedger({ path });
      cleanups.push(() => raw.close());
      const { store, counts } = counted(raw);
      const budgets = createBudgets({ store, pollIntervalMs: 0 });
      cleanups.push(() => budgets.stop());
      const { budget } = await budgets.create({
        name: 'disk',
        scope: { project: 'faults' },
        period: 'total',
        limit_usd: 1,
        thresholds: [0.5, 0.9],
      });

      limitFileSize(1);
      try {
        // $0.60 crosses 0.5 inside a transaction whose commit the disk refuses.
        expect(() => budgets.settle(call('full-1', 600_000_000))).not.toThrow();
        expect(() => budgets.settle(call('full-2', 100_000_000))).not.toThrow();
      } finally {
        limitFileSize('unlimited');
      }
      expect(counts.settle, 'the first failure; the next one waits its turn').toBe(1);
      budgets.settle(call('after', 100_000_000));
      await budgets.flush();

      const view = (await budgets.get(budget.id))!;
      expect(view.requests, 'every call counted').toBe(3);
      expect(Math.round(view.spent_usd * 1e9), 'every dollar counted').toBe(800_000_000);
      expect(
        budgets
          .alerts(budget.id)
          .map((a) => a.threshold)
          .sort(),
        'the 0.5 crossed during the outage fired (once); 0.9 not reached',
      ).toEqual([0.5]);
      expect(budgets.stats()).toMatchObject({ failed: 1, pending: 0, dropped: 0 });
    },
  );
});

describe('budgets when another connection holds the write lock', () => {
  it('finished calls queue their spend instead of each waiting for the lock; nothing is lost', async () => {
    const path = newDb();
    // A ten-minute busy timeout: were any settle or delivery on the event loop to wait it out
    // (rather than the brief wait), this test would hang instead of finishing.
    const raw = openSqliteLedger({ path, busyTimeoutMs: 600_000 });
    cleanups.push(() => raw.close());
    const { store, counts } = counted(raw);
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => process.off('unhandledRejection', onRejection));
    // A poll interval: the worker runs, and each settle that touches a webhook budget nudges it.
    const budgets = createBudgets({
      store,
      pollIntervalMs: 60_000,
      allowPrivateWebhooks: true,
      fetch: async () => new Response(null, { status: 204 }),
    });
    cleanups.push(() => budgets.stop());
    budgets.start();
    const { budget } = await budgets.create({
      name: 'locked',
      scope: { project: 'faults' },
      period: 'day',
      limit_usd: 1,
      thresholds: [0.5],
      webhook_url: 'http://127.0.0.1:9/hook',
    });

    const holder = new Database(path);
    holder.pragma('busy_timeout = 0');
    holder.exec('BEGIN EXCLUSIVE');
    try {
      for (let i = 0; i < 50; i++) {
        expect(() => budgets.settle(call(`locked-${i}`, 20_000_000))).not.toThrow();
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      holder.exec('COMMIT');
      holder.close();
    }
    expect(
      counts.settle,
      'calls that tried the locked database: the first and a few timed retries, not all 50',
    ).toBeLessThan(10);
    await budgets.flush();
    const view = (await budgets.get(budget.id))!;
    expect(view.requests).toBe(50);
    expect(Math.round(view.spent_usd * 1e9)).toBe(50 * 20_000_000);
    expect(budgets.alerts(budget.id).map((a) => a.threshold)).toEqual([0.5]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(rejections, 'no unhandled rejection from the delivery worker').toEqual([]);
  });
});
