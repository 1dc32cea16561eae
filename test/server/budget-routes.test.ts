import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { createServer } from '../../src/server/index.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const TOKEN = 'test-token-0123456789';
let server: Server;
let base: string;
const meter = createMeter({ database: newDb(), webhookPollIntervalMs: 0, allowPrivateWebhooks: true });

beforeAll(async () => {
  const app = createServer(meter as Parameters<typeof createServer>[0], { apiToken: TOKEN });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await meter.shutdown();
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers },
  });

describe('budget API over loopback', () => {
  it('needs the token', async () => {
    const res = await fetch(`${base}/v1/budgets`);
    expect(res.status).toBe(401);
  });

  it('create → 201 with a generated secret shown once; get/list show spend, period and forecast', async () => {
    const res = await api('/v1/budgets', {
      method: 'POST',
      body: JSON.stringify({
        name: 'support monthly',
        scope: { project: 'support' },
        period: 'month',
        limit_usd: 10,
        webhook_url: 'http://127.0.0.1:9/hook',
      }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Record<string, unknown>;
    expect(created.webhook_secret).toMatch(/^whsec_/);
    expect(created).toMatchObject({
      limit_usd: 10,
      spent_usd: 0,
      period: 'month',
      thresholds: [0.5, 0.8, 1],
    });

    meter.budgets!.settle(makeRecord({ startMs: Date.now(), project: 'support', costNanos: 2_500_000_000 }));
    const one = (await (await api(`/v1/budgets/${created.id}`)).json()) as Record<string, unknown>;
    expect(one).toMatchObject({ spent_usd: 2.5, remaining_usd: 7.5, requests: 1, has_webhook_secret: true });
    expect(one.webhook_secret).toBeUndefined();
    expect(Date.parse(one.period_start as string)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(one.period_end as string)).toBeGreaterThan(Date.now());
    expect(typeof one.forecast_usd).toBe('number');
    const list = (await (await api('/v1/budgets')).json()) as { budgets: unknown[] };
    expect(list.budgets).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain(created.webhook_secret as string);

    const alerts = (await (await api(`/v1/alerts?budget_id=${created.id}`)).json()) as { alerts: unknown[] };
    expect(alerts.alerts).toHaveLength(0);

    const patched = await api(`/v1/budgets/${created.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ limit_usd: 4 }),
    });
    expect(await patched.json()).toMatchObject({ limit_usd: 4, spent_usd: 2.5 });

    expect((await api(`/v1/budgets/${created.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/v1/budgets/${created.id}`)).status).toBe(404);
  });

  it.each([
    [{ name: 'x', period: 'day', limit_usd: 0 }, 'limit_usd'],
    [{ name: 'x', period: 'fortnight', limit_usd: 1 }, 'period'],
    [{ name: 'x', period: 'day', limit_usd: 1, action: 'panic' }, 'action'],
    [{ name: 'x', period: 'day', limit_usd: 1, colour: 'red' }, 'colour'],
    [{ period: 'day', limit_usd: 1 }, 'name'],
    [{ name: 'x', period: 'day', limit_usd: '5' }, 'limit_usd'],
  ])('400 naming the field for %j', async (body, field) => {
    const res = await api('/v1/budgets', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: { field: string; message: string } }).error;
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
  });

  it('a private webhook address is refused unless allowed', async () => {
    const strict = createMeter({ database: ':memory:', webhookPollIntervalMs: 0 });
    const error = await strict
      .budgets!.create({
        name: 'x',
        period: 'day',
        limit_usd: 1,
        webhook_url: 'http://169.254.169.254/latest',
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ field: 'webhook_url' });
    await strict.shutdown();
  });

  it('the budget routes are in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of ['/v1/budgets', '/v1/budgets/{id}', '/v1/budgets/{id}/test-alert', '/v1/alerts']) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });
});
