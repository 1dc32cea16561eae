/**
 * The real Express app over loopback, on a real SQLite file.
 */
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isLlmMeterError } from '../../src/errors/errors.js';
import { createMeter } from '../../src/index.js';
import {
  hostnameOf,
  isLoopbackAddress,
  isLoopbackBindHost,
  isLoopbackHostname,
} from '../../src/net/loopback.js';
import { createServer, defaultHost, defineRoute, type RouteModule } from '../../src/server/index.js';
import { openSqliteStore, type UsageStore } from '../../src/store/index.js';
import { useTempDir } from '../fixtures/store-tmp.js';
import { makeErrorRecord, makeRecord } from '../helpers/records.js';

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

/** A raw request to 127.0.0.1:port with any `Host`, `Origin` or other header. */
function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const listening = (server: Server) =>
  new Promise<void>((resolve, reject) => {
    if (server.listening) resolve();
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
const closeServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
const portOf = (server: Server) => (server.address() as AddressInfo).port;

describe('loopback: names and addresses', () => {
  it.each<[string, boolean]>([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['128.0.0.1', false],
    ['localhost', false],
    ['', false],
  ])('isLoopbackAddress(%j) is %s', (address, expected) => {
    expect(isLoopbackAddress(address)).toBe(expected);
  });

  it.each<[string, boolean]>([
    ['localhost', true],
    ['LocalHost', true],
    ['127.0.0.1', true],
    ['::1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['', false],
    ['192.168.1.10', false],
    ['localhost.attacker.example', false],
  ])('isLoopbackBindHost(%j) is %s', (host, expected) => {
    expect(isLoopbackBindHost(host)).toBe(expected);
  });

  it.each<[string | undefined, string | null, boolean]>([
    ['localhost:8787', 'localhost', true],
    ['LOCALHOST', 'localhost', true],
    ['127.0.0.1:8787', '127.0.0.1', true],
    ['127.1', '127.0.0.1', true],
    ['[::1]:8787', '[::1]', true],
    ['[0:0:0:0:0:0:0:1]', '[::1]', true],
    ['attacker.example:8787', 'attacker.example', false],
    ['localhost.attacker.example', 'localhost.attacker.example', false],
    ['127.0.0.1.nip.io', '127.0.0.1.nip.io', false],
    ['attacker.example@localhost', null, false],
    ['localhost/attacker', null, false],
    ['localhost:8787 attacker', null, false],
    ['', null, false],
    [undefined, null, false],
  ])('Host %j → %j (loopback: %s)', (header, hostname, loopback) => {
    expect(hostnameOf(header)).toBe(hostname);
    expect(hostname !== null && isLoopbackHostname(hostname)).toBe(loopback);
  });
});

describe('listen(): without a token, this machine only', () => {
  const forms: [string, (app: Express) => Server][] = [
    ['listen(0)', (app) => app.listen(0)],
    ['listen(0, callback)', (app) => app.listen(0, () => {})],
    ['listen(callback)', (app) => app.listen(() => {})],
    ['listen({ port: 0 })', (app) => app.listen({ port: 0 })],
    ['listen(0, backlog, callback)', (app) => (app.listen as (...a: unknown[]) => Server)(0, 16, () => {})],
  ];
  it.each(forms)('%s binds 127.0.0.1, not every interface', async (_name, listen) => {
    const server = listen(createServer({ store }));
    await listening(server);
    expect((server.address() as AddressInfo).address).toBe('127.0.0.1');
    await closeServer(server);
  });

  it.each(['localhost', '127.0.0.1'])('listen(0, %j) is allowed', async (host) => {
    const server = createServer({ store }).listen(0, host);
    await listening(server);
    expect(isLoopbackAddress((server.address() as AddressInfo).address)).toBe(true);
    await closeServer(server);
  });

  it.each(['0.0.0.0', '::', ''])('listen(0, %j) throws, naming `apiToken` and `insecureNoAuth`', (host) => {
    const app = createServer({ store });
    expect(() => app.listen(0, host)).toThrow(/`apiToken`.*`insecureNoAuth: true`/s);
    expect(() => app.listen({ port: 0, host })).toThrow(/`apiToken`/);
  });

  it('insecureNoAuth binds where told, and says so on the logger', async () => {
    const warnings: string[] = [];
    const app = createServer({ store }, { insecureNoAuth: true, logger: (m) => warnings.push(m) });
    const server = app.listen(0, '0.0.0.0');
    await listening(server);
    expect((server.address() as AddressInfo).address).toBe('0.0.0.0');
    expect(warnings).toEqual([expect.stringMatching(/"0\.0\.0\.0" with no API token/)]);
    await closeServer(server);
    expect(() => createServer({ store }, { insecureNoAuth: 'yes' as never })).toThrow(/`insecureNoAuth`/);
  });

  it('with a token, listen(0) keeps Node’s default (every interface)', async () => {
    const server = createServer({ store }, { apiToken: TOKEN }).listen(0);
    await listening(server);
    expect(['::', '0.0.0.0']).toContain((server.address() as AddressInfo).address);
    await closeServer(server);
  });
});

describe('perimeter: DNS rebinding and cross-origin writes', () => {
  const BUDGET = JSON.stringify({ name: 'rebind', period: 'day', limit_usd: 0.000001, action: 'block' });
  let meter: ReturnType<typeof createMeter>;
  let open: Server;
  let port = 0;
  let own = '';
  const budgetCount = async () => ((await meter.budgets!.list()) as unknown[]).length;

  beforeAll(async () => {
    meter = createMeter({ database: join(newDir(), 'perimeter.db'), webhookPollIntervalMs: 0 });
    open = createServer(meter).listen(0);
    await listening(open);
    port = portOf(open);
    own = `127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await closeServer(open);
    await meter.shutdown();
  });

  it.each([
    ['a rebound name', 'attacker.example'],
    ['a rebound name with the port', 'attacker.example:PORT'],
    ['a name under localhost', 'localhost.attacker.example'],
    ['a name that starts like 127.0.0.1', '127.0.0.1.nip.io'],
    ['user info', 'attacker.example@localhost'],
    ['a LAN address', '10.0.0.1:PORT'],
    ['the wildcard', '0.0.0.0:PORT'],
  ])('without a token, a Host that is %s → 421 on every route', async (_name, host) => {
    const hostile = host.replace('PORT', String(port));
    for (const [method, path, body] of [
      ['GET', '/v1/usage/events', undefined],
      ['GET', '/v1/budgets', undefined],
      ['POST', '/v1/budgets', BUDGET],
      ['GET', '/metrics', undefined],
      ['GET', '/', undefined],
    ] as const) {
      const answer = await rawRequest(port, method, path, { host: hostile }, body);
      expect(answer.status, `${method} ${path}`).toBe(421);
      const error = (JSON.parse(answer.text) as { error: Record<string, string> }).error;
      expect(error).toMatchObject({ type: 'misdirected', field: 'host' });
      expect(error.message).toMatch(/loopback/);
      expect(answer.text).not.toContain(hostile);
    }
    expect(await budgetCount()).toBe(0);
  });

  it.each(['127.0.0.1:PORT', 'localhost:PORT', 'LOCALHOST', '[::1]:PORT', '127.8.8.8:1'])(
    'without a token, Host %s is answered',
    async (host) => {
      const answer = await rawRequest(port, 'GET', '/v1/usage/events?limit=1', {
        host: host.replace('PORT', String(port)),
      });
      expect(answer.status, answer.text).toBe(200);
    },
  );

  it.each<[string, Record<string, string>, string]>([
    ['another site', { origin: 'http://attacker.example' }, 'origin'],
    ['another port on localhost', { origin: 'http://localhost:3000' }, 'origin'],
    ['the same port under another name', { origin: 'http://localhost:PORT' }, 'origin'],
    ['https on the same host', { origin: 'https://127.0.0.1:PORT' }, 'origin'],
    ['an opaque origin', { origin: 'null' }, 'origin'],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, 'sec-fetch-site'],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }, 'sec-fetch-site'],
  ])('without a token, a write from %s → 403, nothing changes', async (_name, headers, field) => {
    const sent = Object.fromEntries(
      Object.entries(headers).map(([k, v]) => [k, v.replace('PORT', String(port))]),
    );
    const { budget } = await meter.budgets!.create({ name: 'keep', period: 'day', limit_usd: 5 });
    const attempts = [
      ['POST', '/v1/budgets', BUDGET],
      ['PATCH', `/v1/budgets/${budget.id}`, JSON.stringify({ limit_usd: 0.000001 })],
      ['DELETE', `/v1/budgets/${budget.id}`, undefined],
      ['POST', `/v1/budgets/${budget.id}/test-alert`, undefined],
    ] as const;
    for (const [method, path, body] of attempts) {
      const answer = await rawRequest(port, method, path, { host: own, ...sent }, body);
      expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(403);
      expect(JSON.parse(answer.text).error).toMatchObject({ type: 'forbidden', field });
    }
    const after = await meter.budgets!.list();
    expect(after.map((b) => [b.name, b.limit_usd])).toEqual([['keep', 5]]);
    meter.budgets!.delete(budget.id);
  });

  it('without a token, same-origin writes (the dashboard’s) and non-browser writes go through', async () => {
    const sameOrigin = await rawRequest(
      port,
      'POST',
      '/v1/budgets',
      { host: own, origin: `http://${own}`, 'sec-fetch-site': 'same-origin' },
      BUDGET,
    );
    expect(sameOrigin.status, sameOrigin.text).toBe(201);
    const curl = await rawRequest(port, 'POST', '/v1/budgets', { host: own }, BUDGET);
    expect(curl.status, curl.text).toBe(201);
    for (const id of [JSON.parse(sameOrigin.text).id, JSON.parse(curl.text).id]) {
      const gone = await rawRequest(port, 'DELETE', `/v1/budgets/${id}`, {
        host: `localhost:${port}`,
        origin: `http://localhost:${port}`,
      });
      expect(gone.status, gone.text).toBeLessThan(300);
    }
    expect(await budgetCount()).toBe(0);
  });

  it('a cross-origin read is answered without CORS headers (the browser keeps it from the page)', async () => {
    const answer = await rawRequest(port, 'GET', '/v1/usage/events?limit=1', {
      host: own,
      origin: 'http://attacker.example',
      'sec-fetch-site': 'cross-site',
    });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
  });

  it('the dashboard page and its same-origin API reads work on localhost', async () => {
    const page = await rawRequest(port, 'GET', '/', { host: `localhost:${port}` });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const read = await rawRequest(port, 'GET', '/v1/usage/summary', {
      host: `localhost:${port}`,
      'sec-fetch-site': 'same-origin',
      referer: `http://localhost:${port}/`,
    });
    expect(read.status, read.text).toBe(200);
  });

  it('with a token, any Host is answered (bearer auth defends; proxies rewrite Host)', async () => {
    const app = createServer(meter, { apiToken: TOKEN }).listen(0, '127.0.0.1');
    await listening(app);
    const p = portOf(app);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const proxied = await rawRequest(p, 'GET', '/v1/budgets', { host: 'meter.internal.example', ...auth });
    expect(proxied.status).toBe(200);
    const noToken = await rawRequest(p, 'GET', '/v1/budgets', { host: 'attacker.example' });
    expect(noToken.status).toBe(401);
    // A browser on another site cannot attach the token without CORS; refused anyway.
    const crossSite = await rawRequest(
      p,
      'POST',
      '/v1/budgets',
      { host: `127.0.0.1:${p}`, 'sec-fetch-site': 'cross-site', ...auth },
      BUDGET,
    );
    expect(crossSite.status, crossSite.text).toBe(403);
    expect(JSON.parse(crossSite.text).error.field).toBe('sec-fetch-site');
    expect(await budgetCount()).toBe(0);
    await closeServer(app);
  });

  it('without a token, a mounted /metrics is behind the same Host check: a rebound name reads nothing', async () => {
    let scrapes = 0;
    const metrics = {
      contentType: 'text/plain; version=0.0.4',
      scrape: async () => {
        scrapes++;
        return 'llm_meter_budget_spent{llm_meter_budget="secret-project"} 1\n';
      },
    };
    const app = createServer(meter, { metrics }).listen(0);
    await listening(app);
    const p = portOf(app);
    const rebound = await rawRequest(p, 'GET', '/metrics', { host: `attacker.example:${p}` });
    expect(rebound.status).toBe(421);
    expect(rebound.text).not.toContain('secret-project');
    expect(scrapes, 'no scrape for a refused request').toBe(0);
    const local = await rawRequest(p, 'GET', '/metrics', { host: `127.0.0.1:${p}` });
    expect(local.status).toBe(200);
    expect(local.text).toContain('secret-project');
    await closeServer(app);
  });

  it('with insecureNoAuth, IP-literal Hosts are answered and DNS names still refused', async () => {
    const app = createServer(meter, { insecureNoAuth: true, logger: () => {} }).listen(0, '127.0.0.1');
    await listening(app);
    const p = portOf(app);
    expect((await rawRequest(p, 'GET', '/v1/budgets', { host: `192.0.2.7:${p}` })).status).toBe(200);
    expect((await rawRequest(p, 'GET', '/v1/budgets', { host: `[2001:db8::1]:${p}` })).status).toBe(200);
    const rebound = await rawRequest(p, 'GET', '/v1/budgets', { host: `attacker.example:${p}` });
    expect(rebound.status).toBe(421);
    const crossOrigin = await rawRequest(
      p,
      'POST',
      '/v1/budgets',
      { host: `192.0.2.7:${p}`, origin: 'http://attacker.example' },
      BUDGET,
    );
    expect(crossOrigin.status).toBe(403);
    await closeServer(app);
  });
});
