/**
 * 1,000 concurrent metered calls against one blocking budget, from TWO host processes
 * (test/fixtures/faults-budget-caller.mjs, the built package) sharing one SQLite file, to the
 * simulator in this process. Counts and spend are exact: the budget counts exactly the calls
 * that went through, its spend is exactly the sum of their costs (price × the simulator's
 * tokens), the spend never passes the limit by more than one reservation, every refused call
 * got the budget's 429 and never reached the provider, and no reservation is left behind.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBudgets } from '../../src/budgets/service.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { buildOnce, DIST } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { useSimulator } from '../helpers/simulator.js';

const CALLER = join(process.cwd(), 'test/fixtures/faults-budget-caller.mjs');
const CALLS_PER_PROCESS = 500;
/** USD per 1M tokens, as the fixture prices gpt-4o-mini: nano-dollars per token × 1000. */
const PRICE = { input: 1, output: 2 };
/** About 60% of the calls fit: enough of each to count. */
const LIMIT_USD = 0.018;

const newDb = useTempDb();
const env = useSimulator();

beforeAll(buildOnce);

interface HostResult {
  ok: string[];
  blocked: string[];
  other: unknown[];
  stats: { calls: number; inFlight: number; sinkErrors: number };
  maxInFlight: number;
  store: { written: number; failed: number; dropped: number; pending: number };
}

/** A host process: `ready` resolves once its meter is open, `go()` starts its calls. */
function host(path: string, label: string) {
  const child = spawn(process.execPath, [CALLER, DIST, env.sim.url, path, String(CALLS_PER_PROCESS), label], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    if (stdout.startsWith('ready\n')) markReady();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const result = new Promise<HostResult>((resolve, reject) =>
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`host ${label} exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.slice('ready\n'.length)) as HostResult);
    }),
  );
  return { ready, result, go: () => child.stdin.end('go\n') };
}

describe('two processes, one database, one blocking budget', () => {
  it('1,000 concurrent calls: requests and spend exact, never past limit + one reservation', async () => {
    const path = newDb();
    const store = openSqliteLedger({ path });
    const budgets = createBudgets({ store, pollIntervalMs: 0 });
    const { budget } = await budgets.create({
      name: 'shared cap',
      scope: { project: 'shared' },
      period: 'day',
      limit_usd: LIMIT_USD,
      action: 'block',
    });

    const hosts = [host(path, 'a'), host(path, 'b')];
    await Promise.all(hosts.map((h) => h.ready));
    for (const h of hosts) h.go();
    const [a, b] = (await Promise.all(hosts.map((h) => h.result))) as [HostResult, HostResult];
    const ok = [...a.ok, ...b.ok];
    const blocked = [...a.blocked, ...b.blocked];
    const view = (await budgets.get(budget.id))!;

    const db = new Database(path, { readonly: true });
    const rows = db
      .prepare(
        "SELECT json_extract(tags, '$.call') AS id, outcome, cost_nanos, input_tokens, output_tokens, projected_max_cost_nanos FROM usage",
      )
      .all() as {
      id: string;
      outcome: string;
      cost_nanos: number | null;
      input_tokens: number | null;
      output_tokens: number | null;
      projected_max_cost_nanos: number | null;
    }[];
    const leftReservations = db.prepare('SELECT count(*) FROM budget_reservations').pluck().get();
    db.close();
    store.close();

    // Ground truth: what the simulator served, priced by hand.
    const truthNanos = env.sim.calls.reduce(
      (sum, c) => sum + c.inputTokens * PRICE.input * 1000 + c.outputTokens * PRICE.output * 1000,
      0,
    );
    const okRows = rows.filter((r) => r.outcome === 'ok');
    const rowNanos = okRows.reduce((sum, r) => sum + (r.cost_nanos ?? 0), 0);
    const spentNanos = Math.round(view.spent_usd * 1e9);
    const oneReservation = Math.max(...okRows.map((r) => r.projected_max_cost_nanos ?? 0));
    const limitNanos = Math.round(LIMIT_USD * 1e9);
    console.log(
      `2 × ${CALLS_PER_PROCESS} calls: ${ok.length} through (a ${a.ok.length}, b ${b.ok.length}), ` +
        `${blocked.length} refused; spent ${spentNanos} of ${limitNanos} nano-USD ` +
        `(one reservation ${oneReservation}); simulator served ${env.sim.calls.length}; ` +
        `most calls in flight at once: a ${a.maxInFlight}, b ${b.maxInFlight}`,
    );

    expect([...a.other, ...b.other], 'every call answered 200 or the budget 429').toEqual([]);
    expect(ok.length + blocked.length).toBe(2 * CALLS_PER_PROCESS);
    expect(ok.length, 'some went through').toBeGreaterThan(100);
    expect(blocked.length, 'some were refused').toBeGreaterThan(100);
    expect(Math.min(a.ok.length, b.ok.length), 'both processes got calls through').toBeGreaterThan(0);
    expect(env.sim.calls.length, 'a refused call never reaches the provider').toBe(ok.length);

    expect(view.requests, 'the budget counts exactly the calls that went through').toBe(ok.length);
    expect(spentNanos, 'spend = the sum of their costs, from the simulator truth').toBe(truthNanos);
    expect(rowNanos, 'and the usage rows say the same').toBe(truthNanos);
    expect(spentNanos, 'never past the limit by more than one reservation').toBeLessThanOrEqual(
      limitNanos + oneReservation,
    );
    expect(leftReservations, 'every reservation was settled').toBe(0);

    expect(rows.length, 'every call has its row').toBe(2 * CALLS_PER_PROCESS);
    expect(new Set(rows.map((r) => r.id)).size).toBe(2 * CALLS_PER_PROCESS);
    expect(okRows.map((r) => r.id).sort()).toEqual([...ok].sort());
    expect(
      rows
        .filter((r) => r.outcome === 'blocked')
        .map((r) => r.id)
        .sort(),
    ).toEqual([...blocked].sort());
    for (const host of [a, b]) {
      expect(host.stats).toMatchObject({ calls: CALLS_PER_PROCESS, inFlight: 0, sinkErrors: 0 });
      // A commit that met the other process's lock past the brief wait is retried (counted in
      // `failed`); every row is written and none dropped.
      expect(host.store).toMatchObject({ written: CALLS_PER_PROCESS, dropped: 0, pending: 0 });
    }
  }, 120_000);
});
