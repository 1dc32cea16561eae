/**
 * The real Express app over loopback, on a real SQLite file.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isLlmMeterError } from '../src/errors/errors.js';
import { createServer, defaultHost, defineRoute, type RouteModule } from '../src/server/index.js';
import { openSqliteStore, type UsageStore } from '../src/store/index.js';
import { useTempDir } from './fixtures/store-tmp.js';
import { makeErrorRecord, makeRecord } from './helpers/records.js';

const TOKEN = 'test-token-3f9a';
const T0 = Date.UTC(2025, 2, 9, 0, 0, 0);
const HOUR = 3_600_000;
const CSV_ROWS = 3000;
const newDir = useTempDir();

/** An app over loopback; `get` sends the token unless told otherwise. */
async function serve(app: Express) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    fetch: (path: string, init: RequestInit & { token?: string | null } = {}) => {
      const { token = TOKEN, headers, ...rest } = init;
      return fetch(base + path, {
        ...rest,
        headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(headers as object) },
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const echo: RouteModule = {
  routes: [
    defineRoute({
      method: 'post',
      path: '/v1/echo/{name}',
      summary: 'Echo a body (a stand-in for the budgets module).',
      params: z.strictObject({ name: z.string().regex(/^[a-z]+$/, 'lowercase letters only') }),
      body: z.strictObject({ limit_usd: z.number().positive('expected a positive number') }),
      responses: { 200: { description: 'The body.' } },
      handler({ res, params, body }) {
        res.json({ name: params.name, limit_usd: body.limit_usd });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/boom',
      summary: 'Fails like a bug would.',
      responses: { 500: { description: 'Internal error.' } },
      handler() {
        throw new Error('SQLITE_ERROR near "SELECT * FROM usage": syntax error');
      },
    }),
  ],
};

let store: UsageStore;
let api: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  store = openSqliteStore({ path: join(newDir(), 'usage.db') });
  for (let i = 0; i < CSV_ROWS; i++) {
    const startMs = T0 + i * 60_000;
    store.write(
      i % 10 === 0
        ? makeErrorRecord({ id: `ev-${i}`, startMs, user: 'bob' })
        : makeRecord({ id: `ev-${i}`, startMs, requestModel: i % 3 === 0 ? 'gpt-4o' : 'gpt-4o-mini' }),
    );
  }
  store.write(
    makeRecord({ id: 'formula', startMs: T0 - HOUR, user: '=HYPERLINK("http://x")', project: 'a,"b"' }),
  );
  await store.flush();
  api = await serve(createServer({ store }, { apiToken: TOKEN, modules: [echo] }));
});

afterAll(async () => {
  await api.close();
  await store.close();
});

describe('GET /v1/usage/summary', () => {
  it('groups and totals', async () => {
    const res = await api.fetch('/v1/usage/summary?group_by=model,outcome');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.totals.requests).toBe(CSV_ROWS + 1);
    expect(body.totals.errors).toBe(CSV_ROWS / 10);
    expect(
      body.rows.map((row: Record<string, unknown>) => `${row['model']}/${row['outcome']}`).sort(),
    ).toEqual(['gpt-4o-mini/error', 'gpt-4o-mini/ok', 'gpt-4o/ok']);
  });

  it('filters, with a repeated parameter for several values', async () => {
    const one = await (await api.fetch('/v1/usage/summary?user=bob')).json();
    expect(one.totals.requests).toBe(CSV_ROWS / 10);
    const two = await (await api.fetch('/v1/usage/summary?model=gpt-4o&model=nope&outcome=ok')).json();
    expect(two.totals.requests).toBe(CSV_ROWS / 3 - CSV_ROWS / 30);
  });

  it('reads plain dates as local midnights in `tz`', async () => {
    // 2025-03-09 in New York: 05:00Z to 04:00Z the next day (23 hours, DST starts).
    const res = await api.fetch(
      '/v1/usage/summary?from=2025-03-09&to=2025-03-10&tz=America/New_York&group_by=day',
    );
    const body = await res.json();
    expect(body.rows).toEqual([expect.objectContaining({ day: '2025-03-09', requests: 23 * 60 })]);
    const instant = await (
      await api.fetch('/v1/usage/summary?from=2025-03-09T05:00:00Z&to=2025-03-09T02:00:00-04:00')
    ).json();
    expect(instant.totals.requests).toBe(60);
    // An unencoded '+' arrives as a space: still read as the offset it was meant to be.
    const plus = await (
      await api.fetch('/v1/usage/summary?from=2025-03-09T06:00:00+01:00&to=2025-03-09T05:30:00.000Z')
    ).json();
    expect(plus.totals.requests).toBe(30);
  });
});

describe('GET /v1/usage/events', () => {
  it('pages newest first with an opaque cursor, each event once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const res = await api.fetch(`/v1/usage/events?limit=1000&user=bob${query}`);
      expect(res.status).toBe(200);
      const body = await res.json();
      seen.push(...body.events.map((event: { id: string }) => event.id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(1);
    expect(seen).toHaveLength(CSV_ROWS / 10);
    expect(seen[0]).toBe(`ev-${CSV_ROWS - 10}`);

    const first = await (await api.fetch('/v1/usage/events?limit=2')).json();
    const second = await (await api.fetch(`/v1/usage/events?limit=2&cursor=${first.next_cursor}`)).json();
    expect([...first.events, ...second.events].map((event: { id: string }) => event.id)).toEqual([
      `ev-${CSV_ROWS - 1}`,
      `ev-${CSV_ROWS - 2}`,
      `ev-${CSV_ROWS - 3}`,
      `ev-${CSV_ROWS - 4}`,
    ]);
  });

  it(`streams CSV: a header and ${CSV_ROWS + 1} rows, quoted, without formulas`, async () => {
    const res = await api.fetch('/v1/usage/events?format=csv');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-length'), 'streamed, not buffered').toBeNull();
    const lines = (await res.text()).split('\r\n').filter((line) => line !== '');
    expect(lines[0]!.startsWith('id,time,end_time,provider')).toBe(true);
    expect(lines).toHaveLength(CSV_ROWS + 2);
    const ids = new Set(lines.slice(1).map((line) => line.split(',')[0]));
    expect(ids.size).toBe(CSV_ROWS + 1);
    const formula = lines.at(-1)!;
    expect(formula).toContain(`"'=HYPERLINK(""http://x"")"`);
    expect(formula).toContain('"a,""b"""');
  });

  it('survives a client that goes away mid-stream', async () => {
    const controller = new AbortController();
    const res = await api.fetch('/v1/usage/events?format=csv', { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    expect((await api.fetch('/healthz')).status).toBe(200);
    expect((await api.fetch('/v1/usage/events?limit=1')).status).toBe(200);
  });
});

describe('GET /v1/usage/timeseries', () => {
  it('gives one series per group with every hour of the range', async () => {
    const res = await api.fetch(
      '/v1/usage/timeseries?interval=hour&metric=requests&group_by=outcome&from=2025-03-09T00:00:00Z&to=2025-03-09T03:00:00Z',
    );
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ interval: 'hour', metric: 'requests' });
    expect(body.series.map((s: { key: unknown }) => s.key)).toEqual([
      { outcome: 'ok' },
      { outcome: 'error' },
    ]);
    expect(body.series[0].points).toEqual([
      { t: '2025-03-09T00:00:00.000Z', value: 54 },
      { t: '2025-03-09T01:00:00.000Z', value: 54 },
      { t: '2025-03-09T02:00:00.000Z', value: 54 },
    ]);
  });
});

describe('validation', () => {
  it.each<[string, string, RegExp]>([
    ['/v1/usage/summary?group_by=model,nope', 'group_by', /Invalid `group_by`: unknown value "nope"/],
    ['/v1/usage/summary?group_by=model&group_by=user', 'group_by', /give it once/],
    ['/v1/usage/summary?from=yesterday', 'from', /ISO 8601/],
    ['/v1/usage/summary?from=2025-03-10T10:00:00', 'from', /with a time zone/],
    ['/v1/usage/summary?to=2025-02-30', 'to', /ISO 8601/],
    ['/v1/usage/summary?from=2025-03-10&to=2025-03-09', 'from', /must be before `to`/],
    ['/v1/usage/summary?tz=Europe/Atlantis', 'tz', /IANA time zone/],
    ['/v1/usage/summary?groupby=model', 'groupby', /Unknown query parameter `groupby`/],
    ['/v1/usage/events?limit=0', 'limit', /from 1 to 1000/],
    ['/v1/usage/events?limit=1001', 'limit', /from 1 to 1000/],
    ['/v1/usage/events?limit=ten', 'limit', /from 1 to 1000/],
    ['/v1/usage/events?cursor=abc', 'cursor', /next_cursor/],
    ['/v1/usage/events?format=xml', 'format', /json, csv/],
    ['/v1/usage/timeseries?interval=minute', 'interval', /hour, day, week, month/],
    ['/v1/usage/timeseries?metric=latency', 'metric', /cost_usd/],
    ['/v1/usage/timeseries?group_by=day', 'group_by', /unknown value "day"/],
    [`/v1/usage/summary?user=${'x'.repeat(300)}`, 'user', /longer than 256/],
    ['/v1/usage/summary?limit=0', 'limit', /from 1 to 1000/],
    ['/v1/usage/summary?limit=1001', 'limit', /from 1 to 1000/],
    ['/v1/usage/timeseries?limit=101', 'limit', /from 1 to 100\b/],
    [
      '/v1/usage/timeseries?interval=hour&group_by=user&from=2020-01-01&to=2025-01-01',
      'interval',
      /more than 10000 `hour` buckets/,
    ],
  ])('%s → 400 naming `%s`', async (path, field, message) => {
    const res = await api.fetch(path);
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error).toMatchObject({ type: 'invalid_request', field });
    expect(body.error.message).toMatch(message);
  });

  it('validates path parameters and JSON bodies of added modules', async () => {
    const post = (path: string, body: string) =>
      api.fetch(path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(await (await post('/v1/echo/abc', '{"limit_usd": 5}')).json()).toEqual({
      name: 'abc',
      limit_usd: 5,
    });
    const cases: Array<[string, string, number, Record<string, unknown>]> = [
      ['/v1/echo/ABC', '{"limit_usd": 5}', 400, { field: 'name' }],
      [
        '/v1/echo/abc',
        '{"limit_usd": -1}',
        400,
        { field: 'limit_usd', message: 'Invalid `limit_usd`: expected a positive number.' },
      ],
      ['/v1/echo/abc', '{"limit_usd": 5, "x": 1}', 400, { field: 'x', message: 'Unknown field `x`.' }],
      ['/v1/echo/abc', '{"limit_usd": ', 400, { message: 'Request body is not valid JSON.' }],
      [
        '/v1/echo/abc',
        JSON.stringify({ limit_usd: 1, pad: 'x'.repeat(200_000) }),
        413,
        { message: 'Request body too large.' },
      ],
    ];
    for (const [path, body, status, error] of cases) {
      const res = await post(path, body);
      expect(res.status, body.slice(0, 40)).toBe(status);
      expect((await res.json()).error).toMatchObject({ type: 'invalid_request', ...error });
    }
  });
});

describe('auth', () => {
  it.each<[string, string | null, number]>([
    ['/v1/usage/summary', null, 401],
    ['/v1/usage/summary', 'wrong', 401],
    ['/v1/usage/summary', `${TOKEN}x`, 401],
    ['/v1/usage/summary', TOKEN, 200],
    ['/v1/nothing-here', null, 401],
    ['/healthz', null, 200],
    ['/readyz', null, 200],
    ['/openapi.json', null, 200],
  ])('%s with token %s → %i', async (path, token, status) => {
    const res = await api.fetch(path, { token });
    expect(res.status).toBe(status);
    if (status === 401) {
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).error.type).toBe('unauthorized');
    }
  });

  it('accepts no empty token, and binds to 127.0.0.1 only without one', () => {
    expect(() => createServer({ store }, { apiToken: ' ' })).toThrow(/`apiToken`/);
    expect(
      isLlmMeterError(
        (() => {
          try {
            createServer({ store }, { apiToken: '' });
          } catch (e) {
            return e;
          }
        })(),
      ),
    ).toBe(true);
    expect(defaultHost({})).toBe('127.0.0.1');
    expect(defaultHost({ apiToken: TOKEN })).toBe('0.0.0.0');
  });

  it('needs no token when none is configured', async () => {
    const open = await serve(createServer({ store }));
    expect((await open.fetch('/v1/usage/summary', { token: null })).status).toBe(200);
    await open.close();
  });
});

describe('errors', () => {
  it('answers 404 and 500 as JSON, never with a stack trace or SQL', async () => {
    const missing = await api.fetch('/v1/usage/nothing');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { type: 'not_found', message: 'Not found.' } });
    const boom = await api.fetch('/v1/boom');
    expect(boom.status).toBe(500);
    const text = await boom.text();
    expect(JSON.parse(text)).toEqual({ error: { type: 'internal', message: 'Internal error.' } });
    expect(text).not.toMatch(/SELECT|at |\.ts/);
  });

  it('answers /readyz 503 when the database is gone', async () => {
    const closed = openSqliteStore({ path: ':memory:' });
    await closed.close();
    const down = await serve(createServer({ store: closed }));
    const res = await down.fetch('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable' });
    expect((await down.fetch('/healthz')).status).toBe(200);
    await down.close();
  });
});
