/**
 * Webhook secrets at rest: with LLM_METER_SECRET_KEY set, the database file holds them only
 * encrypted, deliveries are still signed with the clear secret, and secrets stored clear before
 * the key was set still work.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSecretBox } from '../../src/budgets/secret-box.js';
import { createBudgets } from '../../src/budgets/service.js';
import { createMeter, verifyWebhook } from '../../src/index.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';

const newDb = useTempDb();
const KEY = 'k'.repeat(16) + 'an-operator-chosen-random-key-0123456789';
const OTHER_KEY = 'x'.repeat(48);
const GIVEN = 'my-own-webhook-secret-0123456789';

const received: { headers: IncomingMessage['headers']; body: string }[] = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', () => {
    received.push({ headers: req.headers, body });
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const HOOK = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function open(path: string, secretKey?: string) {
  const store = openSqliteLedger({ path });
  const budgets = createBudgets({ store, secretKey, allowPrivateWebhooks: true, pollIntervalMs: 0 });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await budgets.stop();
    store.close();
  };
  cleanups.push(close);
  return { store, budgets, close };
}

/** Every byte of the database: the file, its WAL and shared memory. */
function fileBytes(path: string): string {
  const dir = dirname(path);
  return readdirSync(dir)
    .map((name) => readFileSync(join(dir, name)).toString('latin1'))
    .join('\n');
}

const storedSecrets = (path: string) => {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('SELECT id, webhook_secret FROM budgets').all() as {
    id: string;
    webhook_secret: string;
  }[];
  db.close();
  return rows;
};

describe('webhook secrets are stored encrypted when a key is set', () => {
  it('the database file holds no clear secret; deliveries are signed with it', async () => {
    const path = newDb();
    const { budgets, close } = open(path, KEY);
    const generated = await budgets.create({ name: 'g', period: 'day', limit_usd: 1, webhook_url: HOOK });
    const given = await budgets.create({
      name: 'given',
      period: 'day',
      limit_usd: 1,
      webhook_url: HOOK,
      webhook_secret: GIVEN,
    });
    const rotated = await budgets.create({ name: 'r', period: 'day', limit_usd: 1, webhook_url: HOOK });
    const ROTATED = 'rotated-secret-value-0123456789ab';
    await budgets.update(rotated.budget.id, { webhook_secret: ROTATED });
    const secret = generated.webhookSecret!;
    expect(secret).toMatch(/^whsec_/);
    expect(generated.budget.has_webhook_secret).toBe(true);

    received.length = 0;
    for (const [id, clear] of [
      [generated.budget.id, secret],
      [given.budget.id, GIVEN],
      [rotated.budget.id, ROTATED],
    ] as const) {
      expect(await budgets.testAlert(id)).toEqual({ delivered: true, status: 204, error: null });
      const last = received.at(-1)!;
      expect(verifyWebhook(clear, last.headers['x-llm-meter-signature'] as string, last.body)).toBe(true);
    }
    await close();

    const bytes = fileBytes(path);
    for (const clear of [secret, GIVEN, ROTATED, secret.slice(6, 30)]) {
      expect(bytes.includes(clear), `the file holds ${clear.slice(0, 10)}…`).toBe(false);
    }
    for (const row of storedSecrets(path)) expect(row.webhook_secret).toMatch(/^enc:v1:[\w-]+$/);
  });

  it('secrets stored clear before the key was set still sign; new ones are sealed', async () => {
    const path = newDb();
    const before = open(path);
    const legacy = await before.budgets.create({
      name: 'legacy',
      period: 'day',
      limit_usd: 1,
      webhook_url: HOOK,
      webhook_secret: GIVEN,
    });
    await before.close();
    expect(storedSecrets(path)[0]?.webhook_secret).toBe(GIVEN);

    const after = open(path, KEY);
    received.length = 0;
    expect(await after.budgets.testAlert(legacy.budget.id)).toMatchObject({ delivered: true });
    expect(
      verifyWebhook(GIVEN, received[0]!.headers['x-llm-meter-signature'] as string, received[0]!.body),
    ).toBe(true);
    const fresh = await after.budgets.create({ name: 'new', period: 'day', limit_usd: 1, webhook_url: HOOK });
    const rows = storedSecrets(path);
    expect(rows.find((r) => r.id === fresh.budget.id)?.webhook_secret).toMatch(/^enc:v1:/);
    expect(rows.find((r) => r.id === legacy.budget.id)?.webhook_secret).toBe(GIVEN);
  });

  it('without the key (or with another) nothing unsigned is sent; the alert waits', async () => {
    const path = newDb();
    const sealing = open(path, KEY);
    const { budget } = await sealing.budgets.create({
      name: 'sealed',
      period: 'total',
      limit_usd: 1,
      thresholds: [0.5],
      webhook_url: HOOK,
    });
    await sealing.close();
    for (const key of [undefined, OTHER_KEY]) {
      const { budgets, close } = open(path, key);
      received.length = 0;
      expect((await budgets.get(budget.id))?.has_webhook_secret).toBe(true);
      expect(await budgets.testAlert(budget.id)).toEqual({
        delivered: false,
        status: null,
        error: 'secret_unavailable',
      });
      expect(received).toHaveLength(0);
      // Editing something else keeps the sealed secret as it was.
      await budgets.update(budget.id, { name: `renamed with ${key ? 'another key' : 'no key'}` });
      await close();
    }
    const { budgets } = open(path, KEY);
    expect(await budgets.testAlert(budget.id)).toMatchObject({ delivered: true });
  });

  it('a sealed value is bound to its budget, and tampering is detected', () => {
    const box = createSecretBox(KEY);
    const sealed = box.seal(GIVEN, 'budget-a');
    expect(box.open(sealed, 'budget-a')).toBe(GIVEN);
    expect(box.open(sealed, 'budget-b')).toBeNull();
    const flipped = `${sealed.slice(0, -2)}${sealed.at(-2) === 'A' ? 'B' : 'A'}${sealed.at(-1)}`;
    expect(box.open(flipped, 'budget-a')).toBeNull();
    expect(box.open('enc:v1:', 'budget-a')).toBeNull();
    expect(box.seal(GIVEN, 'budget-a')).not.toBe(sealed);
    expect(createSecretBox(undefined).open(sealed, 'budget-a')).toBeNull();
  });

  it('a short key is refused naming the variable; a clear secret may not look sealed', async () => {
    expect(() => createSecretBox('too-short')).toThrow(/LLM_METER_SECRET_KEY/);
    const { budgets } = open(newDb(), KEY);
    const error = await budgets
      .create({
        name: 'x',
        period: 'day',
        limit_usd: 1,
        webhook_url: HOOK,
        webhook_secret: 'enc:v1:abcdefghijklmnop',
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'BudgetInputError', field: 'webhook_secret' });
  });

  it('createMeter takes the key from LLM_METER_SECRET_KEY', async () => {
    const path = newDb();
    const previous = process.env.LLM_METER_SECRET_KEY;
    process.env.LLM_METER_SECRET_KEY = KEY;
    try {
      const meter = createMeter({ database: path, webhookPollIntervalMs: 0, allowPrivateWebhooks: true });
      const { webhookSecret } = await meter.budgets!.create({
        name: 'env',
        period: 'day',
        limit_usd: 1,
        webhook_url: HOOK,
      });
      await meter.shutdown();
      expect(fileBytes(path).includes(webhookSecret!)).toBe(false);
      expect(storedSecrets(path)[0]?.webhook_secret).toMatch(/^enc:v1:/);
    } finally {
      if (previous === undefined) delete process.env.LLM_METER_SECRET_KEY;
      else process.env.LLM_METER_SECRET_KEY = previous;
    }
  });
});
