import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../../src/budgets/addresses.js';
import { backoffDelay, DEFAULT_BACKOFF, shouldRetry } from '../../src/budgets/backoff.js';
import { forecastNanos, periodBounds } from '../../src/budgets/period.js';
import { type Budgets, createBudgets } from '../../src/budgets/service.js';
import { sign, verifyWebhook } from '../../src/budgets/signature.js';
import { checkWebhookUrl } from '../../src/budgets/webhook-url.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();

describe('period boundaries are computed, in the budget time zone', () => {
  const cases = [
    {
      name: 'UTC day',
      period: 'day' as const,
      tz: 'UTC',
      now: '2026-03-08T15:00:00Z',
      start: '2026-03-08T00:00:00.000Z',
      end: '2026-03-09T00:00:00.000Z',
      key: 'day:2026-03-08',
    },
    {
      name: 'New York day on the spring-forward date is 23 hours',
      period: 'day' as const,
      tz: 'America/New_York',
      now: '2026-03-08T15:00:00Z',
      start: '2026-03-08T05:00:00.000Z',
      end: '2026-03-09T04:00:00.000Z',
      key: 'day:2026-03-08',
    },
    {
      name: 'ISO week starts Monday (Kolkata, +05:30)',
      period: 'week' as const,
      tz: 'Asia/Kolkata',
      now: '2026-11-29T12:00:00Z',
      start: '2026-11-22T18:30:00.000Z',
      end: '2026-11-29T18:30:00.000Z',
      key: 'week:2026-11-23',
    },
    {
      name: 'month in Paris across the October DST change',
      period: 'month' as const,
      tz: 'Europe/Paris',
      now: '2026-10-31T22:30:00Z',
      start: '2026-09-30T22:00:00.000Z',
      end: '2026-10-31T23:00:00.000Z',
      key: 'month:2026-10-01',
    },
    {
      name: 'December rolls into next year',
      period: 'month' as const,
      tz: 'UTC',
      now: '2026-12-31T23:59:59Z',
      start: '2026-12-01T00:00:00.000Z',
      end: '2027-01-01T00:00:00.000Z',
      key: 'month:2026-12-01',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const b = periodBounds(c.period, c.tz, Date.parse(c.now));
      expect(new Date(b.start).toISOString(), 'start').toBe(c.start);
      expect(b.end === null ? null : new Date(b.end).toISOString(), 'end').toBe(c.end);
      // The key is stored (budget_spend.period_key): its format must never change.
      expect(b.key, 'key').toBe(c.key);
    });
  }

  it('a period that ended starts the next from a new key, without a job', () => {
    const a = periodBounds('day', 'UTC', Date.parse('2026-01-01T23:59:59Z'));
    const b = periodBounds('day', 'UTC', Date.parse('2026-01-02T00:00:00Z'));
    expect(a.key).not.toBe(b.key);
    expect(b.start).toBe(a.end);
  });

  it('forecast projects the recent burn rate to the end of the period', () => {
    const bounds = { start: 0, end: 10 * 3_600_000, key: 'k' };
    // $1 spent, $0.50 in the last hour, 5 hours left → 1 + 0.5 × 5 = 3.5
    expect(forecastNanos(1e9, 0.5e9, 3_600_000, bounds, 5 * 3_600_000)).toBe(3.5e9);
    expect(forecastNanos(1e9, 0, 3_600_000, { start: 0, end: null, key: 'total' }, 5)).toBeNull();
  });
});

describe('signatures, backoff and webhook URL checks', () => {
  it('sign and verify round-trip; tampering, a wrong secret and an old timestamp fail', () => {
    const header = sign('s3cret-s3cret-s3cret', '{"a":1}', 1_700_000_000);
    expect(verifyWebhook('s3cret-s3cret-s3cret', header, '{"a":1}', { now: 1_700_000_010 * 1000 })).toBe(
      true,
    );
    expect(verifyWebhook('s3cret-s3cret-s3cret', header, '{"a":2}', { now: 1_700_000_010 * 1000 })).toBe(
      false,
    );
    expect(verifyWebhook('other-other-other-other', header, '{"a":1}', { now: 1_700_000_010 * 1000 })).toBe(
      false,
    );
    expect(verifyWebhook('s3cret-s3cret-s3cret', header, '{"a":1}', { now: 1_700_001_000 * 1000 })).toBe(
      false,
    );
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
  });

  it('backoff: exponential with full jitter, capped, honouring a longer Retry-After', () => {
    const policy = { baseMs: 1000, maxMs: 60_000, maxAttempts: 5 };
    expect(backoffDelay(1, policy, () => 0.5)).toBe(500);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(2000);
    expect(backoffDelay(20, policy, () => 0.999)).toBeLessThan(60_000);
    expect(backoffDelay(1, policy, () => 0.5, 30_000)).toBe(30_000);
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0)).toBe(0);
    expect([null, 408, 429, 500, 503].map(shouldRetry)).toEqual([true, true, true, true, true]);
    expect([400, 401, 404, 410].map(shouldRetry)).toEqual([false, false, false, false]);
  });

  it('private, loopback and link-local addresses are refused after DNS resolution', async () => {
    expect(
      ['127.0.0.1', '10.1.2.3', '169.254.169.254', '192.168.1.1', '::1', 'fe80::1'].every(isPrivateAddress),
    ).toBe(true);
    expect(isPrivateAddress('93.184.216.34')).toBe(false);
    const lookup = async (host: string) => [
      { address: host === 'evil.example' ? '10.0.0.5' : '93.184.216.34', family: 4 },
    ];
    expect(await checkWebhookUrl('https://evil.example/hook', { allowPrivate: false, lookup })).toMatch(
      /public address/,
    );
    expect(await checkWebhookUrl('https://good.example/hook', { allowPrivate: false, lookup })).toBeNull();
    expect(await checkWebhookUrl('ftp://good.example/', { allowPrivate: false, lookup })).toMatch(
      /http or https/,
    );
    expect(await checkWebhookUrl('http://127.0.0.1:9/', { allowPrivate: true, lookup })).toBeNull();
  });
});

/** A real HTTP receiver on loopback that records deliveries and answers as told. */
async function startReceiver() {
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  let answer = 200;
  let answerHeaders: Record<string, string> = {};
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(answer, answerHeaders).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    answer: (status: number, headers: Record<string, string> = {}) => {
      answer = status;
      answerHeaders = headers;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function setup(path: string, clock: { t: number }) {
  const store = openSqliteLedger({ path });
  const budgets: Budgets = createBudgets({
    store,
    now: () => clock.t,
    random: () => 0.5,
    allowPrivateWebhooks: true,
    pollIntervalMs: 0,
    backoff: { baseMs: 1000, maxMs: 60_000, maxAttempts: 4 },
  });
  return { store, budgets };
}

describe('budgets on a real SQLite file with webhook delivery to a loopback receiver', () => {
  const receivers: Awaited<ReturnType<typeof startReceiver>>[] = [];
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('rejects bad input with a message naming the field', async () => {
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const { budgets, store } = setup(newDb(), clock);
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'x', period: 'day', limit_usd: -1 }, 'limit_usd'],
      [{ name: 'x', period: 'year', limit_usd: 1 }, 'period'],
      [{ name: '', period: 'day', limit_usd: 1 }, 'name'],
      [{ name: 'x', period: 'day', limit_usd: 1, timezone: 'Mars/Base' }, 'timezone'],
      [{ name: 'x', period: 'day', limit_usd: 1, scope: { team: 'a' } }, 'scope'],
      [{ name: 'x', period: 'day', limit_usd: 1, thresholds: [0, 1] }, 'thresholds.0'],
    ];
    for (const [input, field] of cases) {
      const error = await budgets.create(input as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(input)).toMatchObject({ name: 'BudgetInputError', field });
      expect((error as Error).message).toContain(field.split('.')[0]);
    }
    store.close();
  });

  it('each threshold fires once per period; signed, idempotent, verified with the secret', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const { budgets, store } = setup(newDb(), clock);
    const { budget, webhookSecret } = await budgets.create({
      name: 'support daily',
      scope: { project: 'support' },
      period: 'day',
      limit_usd: 1,
      webhook_url: receiver.url,
    });
    expect(webhookSecret).toMatch(/^whsec_/);
    expect(budget).toMatchObject({ spent_usd: 0, remaining_usd: 1, has_webhook_secret: true });
    expect(JSON.stringify(budget)).not.toContain(webhookSecret!);

    // 12 calls of $0.10 in the project, 5 outside it.
    for (let i = 0; i < 12; i++) {
      budgets.settle(makeRecord({ startMs: clock.t + i, project: 'support', costNanos: 100_000_000 }));
    }
    for (let i = 0; i < 5; i++)
      budgets.settle(makeRecord({ startMs: clock.t, project: 'other', costNanos: 1e9 }));
    budgets.settle(makeRecord({ startMs: clock.t, project: 'support', costNanos: null }));
    await budgets.deliverDue();

    const view = await budgets.get(budget.id);
    expect(view?.spent_usd).toBeCloseTo(1.2, 9);
    expect(view?.requests).toBe(13);
    expect(view?.unpriced_requests).toBe(1);
    expect(receiver.received.map((r) => JSON.parse(r.body).threshold)).toEqual([0.5, 0.8, 1]);
    for (const r of receiver.received) {
      const payload = JSON.parse(r.body);
      expect(payload).toMatchObject({ type: 'budget.threshold', limit_usd: 1, budget: { id: budget.id } });
      expect(r.headers['idempotency-key']).toBe(payload.id);
      expect(
        verifyWebhook(webhookSecret!, r.headers['x-llm-meter-signature'] as string, r.body, {
          now: clock.t,
        }),
      ).toBe(true);
    }
    expect(budgets.alerts(budget.id).every((a) => a.state === 'delivered' && a.attempts === 1)).toBe(true);

    // The next day starts from zero and fires again.
    clock.t += 24 * 3_600_000;
    budgets.settle(makeRecord({ startMs: clock.t, project: 'support', costNanos: 600_000_000 }));
    await budgets.deliverDue();
    expect(receiver.received.map((r) => JSON.parse(r.body).threshold)).toEqual([0.5, 0.8, 1, 0.5]);
    expect((await budgets.get(budget.id))?.spent_usd).toBeCloseTo(0.6, 9);
    store.close();
  });

  it('a receiver down for a while, then up, gets each alert once; the outbox survives a restart', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    receiver.answer(503);
    const path = newDb();
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    let { budgets, store } = setup(path, clock);
    const { budget } = await budgets.create({
      name: 'global',
      period: 'total',
      limit_usd: 1,
      thresholds: [0.5],
      webhook_url: receiver.url,
    });
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 700_000_000 }));
    await budgets.deliverDue();
    expect(receiver.received).toHaveLength(1);
    let [alert] = budgets.alerts(budget.id);
    expect(alert).toMatchObject({ state: 'pending', attempts: 1, last_status: 503 });
    // Not due yet: nothing is sent before the backoff delay.
    await budgets.deliverDue();
    expect(receiver.received).toHaveLength(1);

    // The process restarts; the receiver comes back.
    store.close();
    ({ budgets, store } = setup(path, clock));
    receiver.answer(200);
    clock.t += 60_000;
    await budgets.deliverDue();
    await budgets.deliverDue();
    expect(receiver.received).toHaveLength(2);
    const ids = new Set(receiver.received.map((r) => r.headers['idempotency-key']));
    expect(ids.size).toBe(1);
    [alert] = budgets.alerts(budget.id);
    expect(alert).toMatchObject({ state: 'delivered', attempts: 2, last_status: 200 });
    store.close();
  });

  it("a receiver's Retry-After as an HTTP date is honoured", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    receiver.answer(503, { 'retry-after': new Date(clock.t + 45_000).toUTCString() });
    const { budgets, store } = setup(newDb(), clock);
    await budgets.create({
      name: 'dated',
      period: 'total',
      limit_usd: 1,
      thresholds: [0.5],
      webhook_url: receiver.url,
    });
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 700_000_000 }));
    await budgets.deliverDue();
    expect(receiver.received).toHaveLength(1);
    receiver.answer(200);
    clock.t += 40_000;
    await budgets.deliverDue();
    expect(receiver.received, 'not before the date the receiver named (backoff alone: 0.5 s)').toHaveLength(
      1,
    );
    clock.t += 6_000;
    await budgets.deliverDue();
    expect(receiver.received).toHaveLength(2);
    store.close();
  });

  it('a receiver that answers 400 is not retried', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    receiver.answer(400);
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const { budgets, store } = setup(newDb(), clock);
    const { budget } = await budgets.create({
      name: 'b',
      period: 'day',
      limit_usd: 1,
      thresholds: [1],
      webhook_url: receiver.url,
    });
    budgets.settle(makeRecord({ startMs: clock.t, costNanos: 2e9 }));
    await budgets.deliverDue();
    clock.t += 3_600_000;
    await budgets.deliverDue();
    expect(receiver.received).toHaveLength(1);
    expect(budgets.alerts(budget.id)[0]).toMatchObject({ state: 'failed', attempts: 1, last_status: 400 });
    store.close();
  });

  it('test-alert sends a signed budget.test event', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const clock = { t: Date.now() };
    const { budgets, store } = setup(newDb(), clock);
    const { budget, webhookSecret } = await budgets.create({
      name: 't',
      period: 'day',
      limit_usd: 5,
      webhook_url: receiver.url,
    });
    expect(await budgets.testAlert(budget.id)).toEqual({ delivered: true, status: 200, error: null });
    const [r] = receiver.received;
    expect(JSON.parse(r!.body).type).toBe('budget.test');
    expect(
      verifyWebhook(webhookSecret!, r!.headers['x-llm-meter-signature'] as string, r!.body, {
        now: clock.t,
      }),
    ).toBe(true);
    store.close();
  });

  it('reservations: spent + in flight never exceed the limit; settling replaces the reservation', async () => {
    const clock = { t: Date.parse('2026-11-29T10:00:00Z') };
    const { budgets, store } = setup(newDb(), clock);
    await budgets.create({
      name: 'cap',
      scope: { user: 'alice' },
      period: 'day',
      limit_usd: 1,
      action: 'block',
    });
    const scope = { user: 'alice', provider: 'openai', models: ['gpt-4o-mini'] };
    expect(budgets.reserve('call-1', budgets.blockingFor(scope), 600_000_000)).toBeNull();
    expect(budgets.reserve('call-2', budgets.blockingFor(scope), 600_000_000)?.name).toBe('cap');
    expect(budgets.reserve('call-3', budgets.blockingFor({ ...scope, user: 'bob' }), 600_000_000)).toBeNull();
    // call-1 actually cost $0.10: its reservation is released and replaced by the real cost.
    budgets.settle(makeRecord({ id: 'call-1', startMs: clock.t, user: 'alice', costNanos: 100_000_000 }));
    expect(budgets.reserve('call-4', budgets.blockingFor(scope), 600_000_000)).toBeNull();
    const [view] = await budgets.list();
    expect(view).toMatchObject({ spent_usd: 0.1, reserved_usd: 0.6 });
    store.close();
  });
});
