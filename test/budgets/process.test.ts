import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBudgets } from '../../src/budgets/service.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { buildOnce, DIST } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';

const newDb = useTempDb();

function worker(path: string, calls: number, cost: number, id: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['test/fixtures/budget-writer.mjs', DIST, path, String(calls), String(cost), String(id)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    child.on('exit', (code) => resolve(code));
  });
}

beforeAll(() => buildOnce());

/** Starts the reserver, waits until it holds its reservation, then kills it with SIGKILL. */
function reserveAndCrash(path: string, clockMs: number, leaseMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['test/fixtures/budget-reserver.mjs', DIST, path, String(clockMs), String(leaseMs)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) =>
      signal === 'SIGKILL' ? resolve(out.trim()) : reject(new Error(out)),
    );
  });
}

describe('two processes sharing one database', () => {
  it('see one spend and fire each threshold exactly once', async () => {
    const path = newDb();
    const store = openSqliteLedger({ path });
    const budgets = createBudgets({ store, pollIntervalMs: 0 });
    const { budget } = await budgets.create({
      name: 'shared',
      scope: { project: 'shared' },
      period: 'day',
      limit_usd: 1,
      thresholds: [0.25, 0.5, 0.75, 1],
    });
    // 2 × 300 calls of $0.005 = $3: every threshold is crossed, by whichever process gets there.
    const codes = await Promise.all([worker(path, 300, 5_000_000, 1), worker(path, 300, 5_000_000, 2)]);
    expect(codes).toEqual([0, 0]);
    const view = await budgets.get(budget.id);
    expect(view?.requests).toBe(600);
    expect(Math.round(view!.spent_usd * 1e9)).toBe(600 * 5_000_000);
    const alerts = budgets.alerts(budget.id);
    expect(alerts.map((a) => a.threshold).sort()).toEqual([0.25, 0.5, 0.75, 1]);
    store.close();
  });

  it("a crashed process's reservation stops counting when its lease runs out", async () => {
    const path = newDb();
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const lease = 2 * 60_000;
    const store = openSqliteLedger({ path });
    const budgets = createBudgets({
      store,
      pollIntervalMs: 0,
      now: () => clock.t,
      reservationLeaseMs: lease,
    });
    await budgets.create({
      name: 'cap',
      scope: { user: 'alice' },
      period: 'day',
      limit_usd: 1,
      action: 'block',
    });
    expect(await reserveAndCrash(path, clock.t, lease)).toBe('reserved');
    const blocking = budgets.blockingFor({ user: 'alice', provider: 'openai', models: ['gpt-4o-mini'] });
    expect(
      budgets.reserve('survivor-1', blocking, 600_000_000)?.name,
      'the dead call still holds $0.60',
    ).toBe('cap');
    clock.t += lease;
    expect(budgets.reserve('survivor-2', blocking, 600_000_000), 'its lease ran out').toBeNull();
    await budgets.stop();
    store.close();
  });
});
