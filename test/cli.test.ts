import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from './fixtures/build.js';
import { useTempDb } from './fixtures/store-tmp.js';

const newDb = useTempDb();
const CLI = join(process.cwd(), 'dist/cli/main.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  buildOnce();
  expect(existsSync(CLI), 'the CLI is built').toBe(true);
});

describe('llm-meter CLI', () => {
  it.each(['serve', 'demo', 'proxy', 'report', 'budgets', 'migrate', 'prune', 'prices'])(
    '%s --help exits 0 with usage',
    (cmd) => {
      const r = cli(cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Usage:/);
    },
  );

  it.each([
    [['nope'], /Unknown command "nope"/],
    [['report', '--group-by', 'colour'], /--group-by/],
    [['prune', '--older-than', '3 weeks'], /--older-than/],
    [['demo', '--calls', '-1'], /--calls/],
    [['serve', '--port', 'http'], /--port/],
    [['report', '--frobnicate'], /frobnicate/],
    [['proxy', '--upstream', 'nourl'], /--upstream/],
  ])('bad usage %j exits 2 naming the flag', (args, message) => {
    const r = cli(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('demo persists to --db; report, budgets and migrate read it', () => {
    const db = newDb();
    const demo = cli('demo', '--db', db, '--calls', '6', '--concurrency', '2');
    expect(demo.code, demo.err).toBe(0);
    expect(demo.out).toMatch(/10 calls, \$[0-9.]+ total/);
    const report = cli('report', '--db', db, '--group-by', 'provider', '--json');
    expect(report.code, report.err).toBe(0);
    const summary = JSON.parse(report.out) as { totals: { requests: number } };
    expect(summary.totals.requests).toBe(10);
    // Past --limit, the rest of the groups is one row that says how many it holds.
    const top = cli('report', '--db', db, '--group-by', 'provider,model', '--limit', '1');
    expect(top.code, top.err).toBe(0);
    expect(top.out).toMatch(/^\(\d+ others\) /m);
    expect(cli('report', '--db', db, '--limit', '1001').err).toMatch(/--limit/);
    const created = cli(
      'budgets',
      'create',
      '--db',
      db,
      '--name',
      'cap',
      '--limit-usd',
      '5',
      '--period',
      'month',
    );
    expect(created.code, created.err).toBe(0);
    const list = JSON.parse(cli('budgets', 'list', '--db', db, '--json').out) as {
      budgets: { spent_usd: number }[];
    };
    expect(list.budgets[0]!.spent_usd).toBeGreaterThan(0);
    const bad = cli('budgets', 'create', '--db', db, '--name', 'x', '--limit-usd', '5', '--period', 'year');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--period/);
    expect(cli('migrate', '--db', db).out).toMatch(/up to date/);
    expect(cli('prune', '--db', db, '--older-than', '90d').code).toBe(0);
  });

  it('prices shows the source and exits 1 for an unknown model', () => {
    expect(cli('prices', 'gpt-4o-mini').out).toMatch(/source: catalog/);
    const unknown = cli('prices', 'my-private-model-xyz');
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/no known price/);
  });
});
