/**
 * llm-meter leaves the host's global fetch alone: loading the npm undici for webhook deliveries
 * must not install its Agent as the process-wide dispatcher that Node's own fetch reads. Run in a
 * fresh process, since this one may have loaded undici already.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, DIST } from '../fixtures/build.js';

beforeAll(buildOnce);
const dir = mkdtempSync(join(tmpdir(), 'llm-meter-undici-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `body` as an ES module in a fresh Node; prints JSON of what it returns. */
function fresh(body: string): Record<string, unknown> {
  const script = `
const KEY = Symbol.for('undici.globalDispatcher.1');
const out = await (async () => { ${body} })();
console.log(JSON.stringify(out));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').pop()!);
}

describe('the npm undici for webhooks', () => {
  it("a meter with budgets (and so a webhook agent) leaves the host's fetch on Node's own dispatcher", () => {
    const out = fresh(`
      const { createMeter } = await import(${JSON.stringify(join(DIST, 'index.js'))});
      const { createPinnedAgent } = await import(${JSON.stringify(join(DIST, 'budgets/webhook-transport.js'))});
      const meter = createMeter({ database: ${JSON.stringify(join(dir, 'a.db'))} });
      createPinnedAgent({ allowPrivate: false, timeoutMs: 1000 });
      // Node's own fetch installs its own dispatcher when first used; it must not be undici's.
      await fetch('data:,x');
      const { createRequire } = await import('node:module');
      const npm = createRequire(${JSON.stringify(join(DIST, 'index.js'))})('undici');
      const npmAgent = globalThis[KEY] instanceof npm.Agent;
      await meter.shutdown();
      return { npmAgent };`);
    expect(out.npmAgent, "the host's fetch does not run on llm-meter's copy of undici").toBe(false);
  });

  it("keeps a dispatcher the host had set, and the host's fetch keeps using it", () => {
    const out = fresh(`
      const marker = { dispatch() { throw new Error('unused'); } };
      Object.defineProperty(globalThis, KEY, { value: marker, writable: true, enumerable: false, configurable: false });
      const { createPinnedAgent } = await import(${JSON.stringify(join(DIST, 'budgets/webhook-transport.js'))});
      createPinnedAgent({ allowPrivate: false, timeoutMs: 1000 });
      return { same: globalThis[KEY] === marker };`);
    expect(out.same, "the host's dispatcher is left in place").toBe(true);
  });
});
