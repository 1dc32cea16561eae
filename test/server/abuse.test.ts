/**
 * The real Express app over loopback, on a real SQLite file, fed malformed and hostile input:
 * wrong types, huge values, SQL and path injection, oversize and invalid bodies, bad tokens,
 * odd methods. Every answer is a 4xx (or, for a hostile filter value, a 200 that matches
 * nothing), never a 5xx, and no body carries a stack trace, SQL, a file path or a module name.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { createServer } from '../../src/server/index.js';
import { DIMENSIONS } from '../../src/store/types.js';
import { useTempDir } from '../fixtures/store-tmp.js';
import { makeErrorRecord, makeRecord } from '../helpers/records.js';

const TOKEN = 'abuse-token-7c1d0e';
const ROWS = 40;
const newDir = useTempDir('llm-meter-abuse-');

/** Attack strings: SQL, path traversal, format strings, control bytes, prototype keys, huge. */
const HOSTILE = [
  "' OR 1=1 --",
  "' OR '1'='1",
  'model; DROP TABLE usage',
  'model) UNION ALL SELECT sql FROM sqlite_master --',
  "x'); DELETE FROM usage; --",
  '1 OR 1=1',
  '../../../../etc/passwd',
  '..%2f..%2f..%2fetc%2fpasswd',
  '%00',
  '\u0000',
  '%s%s%s%n',
  '$' + '{process.env.HOME}',
  '__proto__',
  'constructor',
  '<script>alert(1)</script>',
  '\r\nX-Injected: 1',
  '𝕏'.repeat(300),
  'a'.repeat(5000),
];

/**
 * What an error body must not show: a stack frame, SQL or SQLite internals, a file path.
 * The hostile input itself may be echoed back in a message (a JSON string, which is harmless),
 * so occurrences of it are cut out before looking.
 */
const LEAKS: [string, RegExp][] = [
  ['a stack frame', /\n\s*at |\bat (?:async )?\S+ \(|\.[cm]?[jt]s:\d+:\d+/],
  ['SQL', /\bSELECT\b|\bFROM usage\b|\bINSERT INTO\b|\bsqlite_master\b/i],
  ['SQLite', /sqlite/i],
  ['a file path', /\/work\/|\/home\/|\/tmp\/|[A-Z]:\\|\/src\/|\/dist\//],
  ['node_modules', /node_modules/],
];

function expectClean(text: string, sent: string[] = []): void {
  let scrubbed = text;
  const echoed = [...sent, ...HOSTILE].flatMap((s) => [s, ...s.split(',').map((part) => part.trim())]);
  for (const s of echoed.sort((a, b) => b.length - a.length)) {
    if (s.length < 3) continue;
    scrubbed = scrubbed.split(s).join('').split(JSON.stringify(s).slice(1, -1)).join('');
  }
  for (const [what, pattern] of LEAKS) {
    expect(pattern.test(scrubbed), `${what} in ${JSON.stringify(text.slice(0, 400))}`).toBe(false);
  }
}

let base = '';
let close: () => Promise<void> = async () => {};
let meter: ReturnType<typeof createMeter>;
let budgetId = '';

beforeAll(async () => {
  meter = createMeter({ database: join(newDir(), 'usage.db'), webhookPollIntervalMs: 0 });
  for (let i = 0; i < ROWS; i++) {
    meter.store!.write(
      i % 5 === 0 ? makeErrorRecord({ id: `abuse-${i}` }) : makeRecord({ id: `abuse-${i}` }),
    );
  }
  await meter.flush();
  budgetId = (await meter.budgets!.create({ name: 'cap', period: 'month', limit_usd: 5 })).budget.id;
  const server = createServer(meter, { apiToken: TOKEN }).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
});
afterAll(async () => {
  await close();
  await meter.shutdown();
});

interface Answer {
  status: number;
  type: string;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A raw HTTP request (any method, any path bytes, any header), so nothing is normalised on the way. */
function raw(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; token?: string | null } = {},
): Promise<Answer> {
  return rawTo(base, method, path, options);
}

function rawTo(
  server: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; token?: string | null } = {},
): Promise<Answer> {
  const { token = TOKEN, headers = {}, body } = options;
  const url = new URL(server);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const get = (path: string, token: string | null = TOKEN) => raw('GET', path, { token });
const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** A 4xx with a JSON error body that leaks nothing. */
function expectRefused(answer: Answer, sent: string[] = []): void {
  expect(answer.status, answer.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(answer.status, answer.text.slice(0, 300)).toBeLessThan(500);
  expectClean(answer.text, sent);
}

/** Error bodies from our own handlers are JSON in the `{ error: { type, message } }` shape. */
function expectJsonError(answer: Answer, sent: string[] = []): void {
  expectRefused(answer, sent);
  expect(answer.type).toMatch(/^application\/json/);
  const body = JSON.parse(answer.text) as { error?: { type?: unknown; message?: unknown } };
  expect(typeof body.error?.type).toBe('string');
  expect(typeof body.error?.message).toBe('string');
}

describe('usage API: wrong types and huge values', () => {
  const cases: [string, string][] = [
    ['limit not a number', q({ limit: 'abc' })],
    ['limit 1e308', q({ limit: '1e308' })],
    ['limit 2^64', q({ limit: '18446744073709551616' })],
    ['limit 1001', q({ limit: '1001' })],
    ['limit 0', q({ limit: '0' })],
    ['limit negative', q({ limit: '-1' })],
    ['limit fractional', q({ limit: '1.5' })],
    ['limit hex', q({ limit: '0x10' })],
    ['limit Infinity', q({ limit: 'Infinity' })],
    ['limit NaN', q({ limit: 'NaN' })],
    ['limit given twice', 'limit=1&limit=2'],
    ['from year 99999', q({ from: '99999-01-01' })],
    ['from year +099999 (expanded ISO)', q({ from: '+099999-01-01T00:00:00Z' })],
    ['from year 0000', q({ from: '0000-01-01' })],
    ['from a bare epoch number', q({ from: '1e308' })],
    ['from month 13', q({ from: '2025-13-01' })],
    ['from Feb 30', q({ from: '2025-02-30' })],
    ['from hour 24', q({ from: '2025-01-01T24:00:00Z' })],
    ['from offset +99:99', q({ from: '2025-01-01T00:00:00+99:99' })],
    ['from without a zone', q({ from: '2025-01-01T00:00:00' })],
    ['from after to', q({ from: '2025-03-02', to: '2025-03-01' })],
    ['tz unknown', q({ tz: 'Mars/Olympus_Mons' })],
    ['tz path traversal', q({ tz: '../../../../etc/localtime' })],
    ['cursor garbage', q({ cursor: "' OR 1=1 --" })],
    [
      'cursor crafted (beyond safe integers)',
      q({ cursor: Buffer.from('v1:9999999999999999:1').toString('base64url') }),
    ],
    ['cursor crafted (SQL inside)', q({ cursor: Buffer.from("v1:1:1' OR 1=1 --").toString('base64url') })],
    ['cursor huge', q({ cursor: 'A'.repeat(10_000) })],
    ['format unknown', q({ format: 'xml' })],
    ['format given twice', 'format=csv&format=json'],
    ['unknown parameter', q({ frobnicate: '1' })],
    ['__proto__ parameter', '__proto__=1'],
    ['constructor parameter', 'constructor=x'],
    ['filter longer than 256 characters', q({ model: 'm'.repeat(257) })],
    ['filter repeated 51 times', Array.from({ length: 51 }, (_, i) => `model=m${i}`).join('&')],
  ];
  it.each(cases)('events: %s → 400', async (_name, query) => {
    expectJsonError(await get(`/v1/usage/events?${query}`), sentValues(query));
  });

  const summaryCases: [string, string][] = [
    ['group_by unknown', q({ group_by: 'colour' })],
    ['group_by SQL comment', q({ group_by: "' OR 1=1 --" })],
    ['group_by stacked statement', q({ group_by: 'model; DROP TABLE usage' })],
    ['group_by UNION', q({ group_by: 'model) UNION SELECT 1,2,3 --' })],
    ['group_by a column that exists but is not a dimension', q({ group_by: 'cost_nanos' })],
    ['group_by given twice', 'group_by=model&group_by=user'],
    ['group_by huge', q({ group_by: 'model,'.repeat(2000) })],
    ['from year 99999', q({ from: '99999-01-01' })],
  ];
  it.each(summaryCases)('summary: %s → 400', async (_name, query) => {
    expectJsonError(await get(`/v1/usage/summary?${query}`), sentValues(query));
  });

  const seriesCases: [string, string][] = [
    ['interval unknown', q({ interval: 'minute' })],
    ['metric SQL', q({ metric: 'cost_usd; DROP TABLE usage' })],
    ['metric a column name', q({ metric: 'cost_nanos' })],
    ['group_by a time bucket', q({ group_by: 'day' })],
  ];
  it.each(seriesCases)('timeseries: %s → 400', async (_name, query) => {
    expectJsonError(await get(`/v1/usage/timeseries?${query}`), sentValues(query));
  });

  // Date.UTC reads years 0-99 as 1900-1999: `from=0050-01-01&to=1950-06-01` was refused as
  // "from after to", and `to=0050-…` silently meant 1950 (every 2025 row is after either).
  it.each([
    ['0050-01-01', '1950-01-01'],
    ['0099-01-01T00:00:00Z', '1950-12-31T23:59:59+01:00'],
  ])('years 0001-0099 are those years: from=%s to=%s is a valid, empty range', async (from, to) => {
    const answer = await get(`/v1/usage/summary?${q({ from, to })}`);
    expect(answer.status, answer.text).toBe(200);
    expect((JSON.parse(answer.text) as { totals: { requests: number } }).totals.requests).toBe(0);
  });

  it('a URL longer than Node accepts → 431, not a crash', async () => {
    const answer = await get(`/v1/usage/events?model=${'x'.repeat(70_000)}`);
    expectRefused(answer);
  });
});

describe('usage API: SQL injection in filter values', () => {
  // A filter value is data (a model may be called anything), bound as a parameter: the
  // answer is a 200 that matches nothing, never every row and never a SQL error.
  it.each(HOSTILE)('every dimension = %j matches nothing', async (value) => {
    for (const dim of ['model', 'provider', 'user', 'project', 'feature', 'operation', 'outcome']) {
      const summary = await get(`/v1/usage/summary?${q({ [dim]: value })}`);
      if (value.length > 256) {
        expectJsonError(summary, [value]);
        continue;
      }
      expect(summary.status, summary.text.slice(0, 200)).toBe(200);
      expect((JSON.parse(summary.text) as { totals: { requests: number } }).totals.requests).toBe(0);
      const events = await get(`/v1/usage/events?${q({ [dim]: value })}`);
      expect(events.status).toBe(200);
      expect((JSON.parse(events.text) as { events: unknown[] }).events).toEqual([]);
    }
  });

  it('the table is intact afterwards', async () => {
    const answer = await get('/v1/usage/summary');
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.text) as { totals: { requests: number } }).totals.requests).toBe(ROWS);
  });
});

describe('budgets API: path traversal and hostile ids', () => {
  const ids = [
    '..%2f..%2fetc%2fpasswd',
    '..%2F..%2F..%2Fpackage.json',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    "'%20OR%201%3D1%20--",
    'x%27%29%3B%20DELETE%20FROM%20budgets%3B%20--',
    '%00',
    '%E0%A4%A',
    '%',
    'a'.repeat(101),
    encodeURIComponent('𝕏'.repeat(60)),
  ];
  it.each(ids)('GET/PATCH/DELETE/test-alert /v1/budgets/%s → 4xx', async (id) => {
    const sent = [id, decodeSafe(id)];
    expectJsonError(await get(`/v1/budgets/${id}`), sent);
    expectJsonError(
      await raw('PATCH', `/v1/budgets/${id}`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x' }),
      }),
      sent,
    );
    expectJsonError(await raw('DELETE', `/v1/budgets/${id}`), sent);
    expectJsonError(await raw('POST', `/v1/budgets/${id}/test-alert`), sent);
  });

  it('the budget is still there, unchanged', async () => {
    const answer = await get(`/v1/budgets/${budgetId}`);
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.text) as { name: string }).name).toBe('cap');
    const list = JSON.parse((await get('/v1/budgets')).text) as { budgets: unknown[] };
    expect(list.budgets).toHaveLength(1);
  });

  it.each([
    '/..%2f..%2fpackage.json',
    '/assets/..%2f..%2f..%2fpackage.json',
    '/assets/%2e%2e/%2e%2e/%2e%2e/src/meter.ts',
    '/assets/../../../../etc/passwd',
    '/assets/%2e%2e%5c%2e%2e%5cpackage.json',
    '/assets/index.html%00.js',
    '/assets/..%00/etc/passwd',
  ])('static files: %s is never served', async (path) => {
    const answer = await raw('GET', path, { token: null });
    expectRefused(answer, [path]);
    expect(answer.text).not.toMatch(/"name": "llm-meter"|root:x:0:0|createMeter/);
  });
});

/** What a query string carries, decoded as the server decodes it, for expectClean. */
function sentValues(query: string): string[] {
  return [...new URLSearchParams(query).values()];
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

describe('budgets API: malformed and hostile bodies', () => {
  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    raw('POST', '/v1/budgets', { headers: { 'content-type': 'application/json', ...headers }, body });
  const valid = { name: 'n', period: 'day', limit_usd: 1 };

  const bodies: [string, string][] = [
    ['invalid JSON', '{"name": "n", '],
    ['JSON with a trailing comma', '{"name":"n",}'],
    ['a JSON string', '"budget"'],
    ['a JSON number', '42'],
    ['null', 'null'],
    ['an array', '[]'],
    ['empty object', '{}'],
    ['limit_usd 1e308', JSON.stringify({ ...valid, limit_usd: 1e308 })],
    ['limit_usd Infinity (1e999)', '{"name":"n","period":"day","limit_usd":1e999}'],
    ['limit_usd negative', JSON.stringify({ ...valid, limit_usd: -1 })],
    ['limit_usd zero', JSON.stringify({ ...valid, limit_usd: 0 })],
    ['limit_usd a string', JSON.stringify({ ...valid, limit_usd: '10' })],
    ['limit_usd an object', JSON.stringify({ ...valid, limit_usd: { $gt: 0 } })],
    ['period SQL', JSON.stringify({ ...valid, period: "day' OR 1=1 --" })],
    ['name a number', JSON.stringify({ ...valid, name: 7 })],
    ['name 10 kB', JSON.stringify({ ...valid, name: 'n'.repeat(10_000) })],
    ['scope unknown key', JSON.stringify({ ...valid, scope: { tenant: 'x' } })],
    ['scope value an array', JSON.stringify({ ...valid, scope: { user: ['a', 'b'] } })],
    [
      'thresholds huge array',
      JSON.stringify({ ...valid, thresholds: Array.from({ length: 5000 }, () => 0.5) }),
    ],
    ['thresholds 1e308', JSON.stringify({ ...valid, thresholds: [1e308] })],
    ['action unknown', JSON.stringify({ ...valid, action: 'explode' })],
    ['timezone traversal', JSON.stringify({ ...valid, timezone: '../../../etc/localtime' })],
    ['webhook_url file:', JSON.stringify({ ...valid, webhook_url: 'file:///etc/passwd' })],
    ['webhook_url javascript:', JSON.stringify({ ...valid, webhook_url: 'javascript:alert(1)' })],
    [
      'webhook_url cloud metadata (SSRF)',
      JSON.stringify({ ...valid, webhook_url: 'http://169.254.169.254/latest' }),
    ],
    ['webhook_url loopback (SSRF)', JSON.stringify({ ...valid, webhook_url: 'http://127.0.0.1:22/' })],
    ['webhook_url IPv6 loopback (SSRF)', JSON.stringify({ ...valid, webhook_url: 'http://[::1]/' })],
    [
      'webhook_url IPv4-mapped loopback (SSRF)',
      JSON.stringify({ ...valid, webhook_url: 'http://[::ffff:127.0.0.1]/' }),
    ],
    ['webhook_url not a URL', JSON.stringify({ ...valid, webhook_url: 'not a url' })],
    ['webhook_secret too short', JSON.stringify({ ...valid, webhook_secret: 'short' })],
    ['__proto__ key', `{"__proto__":{"polluted":true},"name":"n","period":"day","limit_usd":1}`],
    [
      'constructor.prototype key',
      `{"constructor":{"prototype":{"polluted":true}},"name":"n","period":"day","limit_usd":1}`,
    ],
    ['deeply nested', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`],
    ['deeply nested arrays', `${'['.repeat(5000)}${']'.repeat(5000)}`],
    ['a lone surrogate in a string', '{"name":"\\ud800","period":"day","limit_usd":"x"}'],
  ];
  it.each(bodies)('POST /v1/budgets %s → 400', async (_name, body) => {
    const answer = await post(body);
    expectJsonError(answer, [body]);
    expect(answer.status).toBe(400);
  });

  it('nothing was created, and no prototype was polluted', async () => {
    const list = JSON.parse((await get('/v1/budgets')).text) as { budgets: unknown[] };
    expect(list.budgets).toHaveLength(1);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('oversize bodies (> 100 kB) → 413', async () => {
    const big = JSON.stringify({ ...valid, name: 'n'.repeat(150_000) });
    const answer = await post(big);
    expectJsonError(answer, [big]);
    expect(answer.status).toBe(413);
    // The limit is on the inflated size: a 10 MB gzip bomb of a few kB is refused the same way.
    const bomb = gzipSync(
      Buffer.concat([Buffer.from('{"name":"'), Buffer.alloc(10_000_000, 0x61), Buffer.from('"}')]),
    );
    expect(bomb.length).toBeLessThan(100_000);
    const inflated = await post(bomb, { 'content-encoding': 'gzip' });
    expectJsonError(inflated);
    expect(inflated.status).toBe(413);
  });

  it.each([
    ['corrupt gzip', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' }],
    ['unsupported encoding', Buffer.from(JSON.stringify(valid)), { 'content-encoding': 'zstd' }],
    [
      'a charset other than UTF',
      Buffer.from(JSON.stringify(valid)),
      { 'content-type': 'application/json; charset=iso-8859-1' },
    ],
    ['text/plain body', Buffer.from(JSON.stringify(valid)), { 'content-type': 'text/plain' }],
    [
      'form body',
      Buffer.from('name=n&period=day&limit_usd=1'),
      { 'content-type': 'application/x-www-form-urlencoded' },
    ],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), {}],
  ] as [string, Buffer, Record<string, string>][])('%s → 4xx', async (_name, body, headers) => {
    expectJsonError(await post(body, headers));
  });
});

describe('bodies that cannot be read name the body', () => {
  it.each(['gzip', 'deflate', 'br'])(
    'a %s body that does not inflate → 400 with field `body`',
    async (encoding) => {
      const answer = await raw('POST', '/v1/budgets', {
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body: '{"name":',
      });
      expectJsonError(answer);
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.text).error).toMatchObject({ type: 'invalid_request', field: 'body' });
    },
  );

  it('invalid JSON → 400 with field `body`', async () => {
    const answer = await raw('POST', '/v1/budgets', {
      headers: { 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(JSON.parse(answer.text).error).toEqual({
      type: 'invalid_request',
      message: 'Request body is not valid JSON.',
      field: 'body',
    });
  });

  it('a path parameter that is not percent-encoding → 400 with field `path`', async () => {
    const answer = await get('/v1/budgets/%E0%A4%A');
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error).toMatchObject({ type: 'invalid_request', field: 'path' });
  });
});

describe('auth', () => {
  const routes = ['/v1/usage/summary', '/v1/usage/events', '/v1/budgets', '/v1/alerts', `/v1/budgets/${'x'}`];
  const tokens: [string, Record<string, string>][] = [
    ['no header', {}],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['wrong token', { authorization: 'Bearer wrong-token' }],
    ['token with a suffix', { authorization: `Bearer ${TOKEN}x` }],
    ['token prefix only', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['basic auth', { authorization: `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}` }],
    ['token without the scheme', { authorization: TOKEN }],
    ['two tokens', { authorization: `Bearer wrong ${TOKEN}` }],
    ['SQL in the token', { authorization: "Bearer ' OR 1=1 --" }],
    ['a 10 kB token', { authorization: `Bearer ${'t'.repeat(10_000)}` }],
  ];
  it.each(tokens)('%s → 401 on every /v1 route, for every method', async (_name, headers) => {
    for (const route of routes) {
      for (const method of ['GET', 'POST', 'PATCH', 'DELETE', 'PUT']) {
        const answer = await raw(method, route, { token: null, headers });
        expectJsonError(answer, Object.values(headers));
        expect(answer.status, `${method} ${route}`).toBe(401);
      }
    }
  });

  it('/metrics is not mounted without a source, and /openapi.json says nothing secret', async () => {
    expectRefused(await raw('GET', '/metrics', { token: null }));
    const doc = await raw('GET', '/openapi.json', { token: null });
    expect(doc.status).toBe(200);
    expect(doc.text).not.toContain(TOKEN);
    expectClean(doc.text);
  });
});

describe('methods', () => {
  it.each([
    ['PUT', '/v1/budgets'],
    ['PUT', '/v1/usage/summary'],
    ['DELETE', '/v1/usage/events'],
    ['POST', '/v1/usage/summary'],
    ['PATCH', '/v1/budgets'],
    ['PROPFIND', '/v1/budgets'],
    ['TRACE', '/v1/usage/summary'],
    ['SEARCH', '/v1/usage/events'],
    ['LOCK', `/v1/budgets/${'x'}`],
    ['PURGE', '/'],
  ])('%s %s → 4xx', async (method, path) => {
    expectRefused(await raw(method, path));
  });

  it('a method Node does not know → 400 from the parser', async () => {
    expectRefused(await raw('FROBNICATE', '/v1/usage/summary'));
  });
});

describe('property: any query string on the usage routes', () => {
  const KEYS = [
    'from',
    'to',
    'tz',
    'group_by',
    'limit',
    'cursor',
    'format',
    'interval',
    'metric',
    ...DIMENSIONS,
    '__proto__',
    'constructor',
    'hasOwnProperty',
    'toString',
    'a[b]',
    'model[]',
    '',
  ];
  const value = fc.oneof(
    fc.constantFrom(...HOSTILE.filter((h) => h.length < 300)),
    fc.constantFrom(
      '',
      '0',
      '-1',
      '1e308',
      '-0',
      'NaN',
      '9007199254740993',
      '2025-03-10',
      '2025-03-10T09:00:00Z',
      '2025-03-10T09:00:00+05:30',
      '99999-01-01',
      '0000-01-01',
      'Europe/Paris',
      'model,user,day',
      'hour',
      'csv',
      'json',
      'requests',
      'ok',
      'gpt-4o-mini',
    ),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  const queryString = fc
    .array(fc.tuple(fc.constantFrom(...KEYS), value), { maxLength: 6 })
    .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));
  const rawJunk = fc
    .array(
      fc.constantFrom(
        '%',
        '%2',
        '%zz',
        '&',
        '=',
        '==',
        '&&',
        '+',
        '%00',
        '%E0%A4%A',
        ';',
        '#',
        'model',
        '[]',
      ),
      {
        maxLength: 12,
      },
    )
    .map((parts) => parts.join(''));

  it('never a 5xx; a 200 is JSON (or CSV), an error leaks nothing', async () => {
    let ok = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/usage/summary', '/v1/usage/events', '/v1/usage/timeseries', '/v1/alerts'),
        fc.oneof(queryString, rawJunk),
        async (route, query) => {
          const answer = await get(`${route}?${query.replace(/#/g, '%23')}`);
          expect(answer.status, `${route}?${query} → ${answer.text.slice(0, 200)}`).toBeLessThan(500);
          if (answer.status === 200) {
            ok++;
            if (!answer.type.startsWith('text/csv')) expect(() => JSON.parse(answer.text)).not.toThrow();
          } else {
            refused++;
            expectJsonError(answer, [query, ...sentValues(query)]);
          }
        },
      ),
      { numRuns: 150, seed: 20250310 },
    );
    expect(ok + refused).toBe(150);
    expect(ok, 'some generated queries are valid').toBeGreaterThan(0);
    expect(refused, 'some generated queries are refused').toBeGreaterThan(0);
  });
});

describe('fuzz: any method, path, query, body and headers', () => {
  /** Only ever sent in headers: if it shows up in an answer, a header was reflected. */
  const MARK = 'zz-reflect-7q';
  const METHODS = [
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'PATCH',
    'DELETE',
    'OPTIONS',
    'TRACE',
    'PROPFIND',
    'SEARCH',
    'LOCK',
    'PURGE',
    'MKCOL',
    'COPY',
    'REPORT',
  ];
  const ROUTES = [
    '/',
    '/healthz',
    '/readyz',
    '/openapi.json',
    '/metrics',
    '/assets/dashboard.js',
    '/v1/usage/summary',
    '/v1/usage/events',
    '/v1/usage/timeseries',
    '/v1/budgets',
    '/v1/budgets/BUDGET',
    '/v1/budgets/BUDGET/test-alert',
    '/v1/alerts',
  ];
  const SEGMENTS = [
    'v1',
    'budgets',
    'usage',
    'events',
    'assets',
    '..',
    '.',
    '%2e%2e',
    '%2f',
    '%00',
    '%',
    '%E0%A4%A',
    '',
    'x'.repeat(300),
  ];
  const path = fc.oneof(
    fc.constantFrom(...ROUTES),
    fc
      .array(fc.oneof(fc.constantFrom(...SEGMENTS), fc.string({ maxLength: 12 }).map(encodeURIComponent)), {
        minLength: 1,
        maxLength: 5,
      })
      .map((segments) => `/${segments.join('/')}`),
  );
  const queryValue = fc.oneof(
    fc.constantFrom(...HOSTILE.filter((h) => h.length < 300), '', '0', '-1', '1e308', '2025-03-10', 'model'),
    fc.string({ maxLength: 20 }),
  );
  const query = fc
    .array(
      fc.tuple(
        fc.constantFrom(
          'from',
          'to',
          'tz',
          'group_by',
          'limit',
          'cursor',
          'format',
          'budget_id',
          'model',
          'x',
        ),
        queryValue,
      ),
      { maxLength: 4 },
    )
    .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));
  // No public webhook URL: a fuzzed test-alert must not send traffic off this machine.
  const budgetish = fc.record(
    {
      name: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom(...HOSTILE), fc.integer()),
      period: fc.constantFrom('day', 'week', 'month', 'total', 'year', 5, null),
      limit_usd: fc.oneof(fc.double(), fc.constantFrom(1, '1', 0, -1)),
      scope: fc.oneof(
        fc.record(
          { user: fc.string({ maxLength: 10 }), model: fc.constantFrom(...HOSTILE) },
          { requiredKeys: [] },
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      thresholds: fc.array(fc.double(), { maxLength: 4 }),
      action: fc.constantFrom('alert', 'block', 'explode'),
      webhook_url: fc.constantFrom('http://127.0.0.1:1/', 'file:///etc/passwd', 'not a url', 'http://[::1]/'),
      timezone: fc.constantFrom('UTC', 'Europe/Paris', '../../etc/localtime'),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    budgetish.map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 40 }),
    fc.constantFrom('{"name":', '\u0000', '[[[[[', '{"__proto__":{"x":1}}'),
  );
  const headerText = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 30,
  });
  const headers = fc.record(
    {
      'content-type': fc.constantFrom(
        'application/json',
        'application/json; charset=utf-16',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset="',
      ),
      'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'zstd'),
      accept: fc.constantFrom('*/*', 'text/csv', 'application/json', 'text/html'),
      origin: fc.constantFrom(`http://${MARK}.example`, 'null', `https://${MARK}.example:8787`),
      'sec-fetch-site': fc.constantFrom('cross-site', 'same-site', 'same-origin', 'none', MARK),
      host: fc.constantFrom(`${MARK}.example`, `${MARK}.example:80`, `127.0.0.1.${MARK}.example`),
      'x-forwarded-host': fc.constant(`${MARK}.example`),
      'x-forwarded-for': fc.constantFrom('10.0.0.1', `${MARK}`),
      'x-http-method-override': fc.constantFrom('DELETE', 'PUT'),
      range: fc.constantFrom('bytes=0-1', 'bytes=-1', 'bytes=99999999-'),
      'if-none-match': fc.constantFrom('*', 'W/"x"'),
      'x-junk': headerText,
    },
    { requiredKeys: [] },
  );
  const token = fc.constantFrom<string | null>(TOKEN, TOKEN, null, 'wrong');

  /** Everything an answer must be, whatever was sent. */
  function expectSane(answer: Answer, method: string, sent: string[]): void {
    const what = `${answer.status} ${answer.text.slice(0, 200)}`;
    expect(answer.status, what).toBeLessThan(500);
    expect(JSON.stringify(answer.headers) + answer.text, 'a request header was reflected').not.toContain(
      MARK,
    );
    expect(
      Object.keys(answer.headers).filter((h) => h.startsWith('access-control-')),
      'no CORS is granted',
    ).toEqual([]);
    if (answer.status < 400 || method === 'HEAD') return;
    expectJsonError(answer, sent);
    if (answer.status === 400) {
      const error = (JSON.parse(answer.text) as { error: { field?: unknown } }).error;
      expect(typeof error.field === 'string' && error.field !== '', `a 400 names its field: ${what}`).toBe(
        true,
      );
    }
  }

  it('with a token: never a 5xx, never a crash, every error JSON, no header reflected', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS),
        path,
        query,
        body,
        headers,
        token,
        async (method, p, q, b, h, t) => {
          const target = `${p.replace(/BUDGET/g, budgetId)}${q ? `?${q}` : ''}`;
          const answer = await raw(method, target, {
            token: t,
            headers: h,
            ...(b === undefined ? {} : { body: b }),
          });
          statuses.add(answer.status);
          expectSane(answer, method, [target, p, q, ...sentValues(q), ...(b === undefined ? [] : [b])]);
        },
      ),
      { numRuns: 250, seed: 20250612 },
    );
    expect(statuses.size, `a spread of answers: ${[...statuses]}`).toBeGreaterThan(4);
    expect((await get('/healthz', null)).status).toBe(200);
  });

  it('without a token: a foreign Host is always 421, a foreign write always 403', async () => {
    const open = createServer(meter).listen(0);
    await new Promise<void>((resolve) => open.once('listening', () => resolve()));
    const openBase = `http://127.0.0.1:${(open.address() as AddressInfo).port}`;
    const loopbackHost = fc.constantFrom(
      new URL(openBase).host,
      `localhost:${new URL(openBase).port}`,
      `[::1]:${new URL(openBase).port}`,
    );
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...METHODS),
          path,
          query,
          body,
          headers,
          fc.boolean(),
          loopbackHost,
          async (method, p, q, b, h, loopback, own) => {
            const sent: Record<string, string> = { ...h };
            if (loopback) sent.host = own;
            const target = `${p.replace(/BUDGET/g, budgetId)}${q ? `?${q}` : ''}`;
            const answer = await rawTo(openBase, method, target, {
              token: null,
              headers: sent,
              ...(b === undefined ? {} : { body: b }),
            });
            expectSane(answer, method, [target, p, q, ...sentValues(q), ...(b === undefined ? [] : [b])]);
            if (!loopback && h.host !== undefined) {
              expect(answer.status, `Host ${h.host}`).toBe(421);
            } else if (
              !['GET', 'HEAD', 'OPTIONS'].includes(method) &&
              (h.origin !== undefined ||
                h['sec-fetch-site'] === 'cross-site' ||
                h['sec-fetch-site'] === 'same-site')
            ) {
              expect(answer.status, `${method} with ${JSON.stringify(h)}`).toBe(403);
            }
          },
        ),
        { numRuns: 150, seed: 20250613 },
      );
      expect((await rawTo(openBase, 'GET', '/healthz', { token: null })).status).toBe(200);
    } finally {
      open.closeAllConnections();
      await new Promise<void>((resolve) => open.close(() => resolve()));
    }
  });
});
