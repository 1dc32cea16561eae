/**
 * Webhook SSRF defences: the address checker (a table and a fuzz pass over the spellings of
 * private addresses), and deliveries that connect only to the address that was checked, follow
 * no redirect and never report what the receiver wrote.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { type AddressInfo, isIP } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../../src/budgets/addresses.js';
import { type Budgets, createBudgets } from '../../src/budgets/service.js';
import { createPinnedAgent } from '../../src/budgets/webhook-transport.js';
import { checkWebhookUrl, type Lookup, webhookHost } from '../../src/budgets/webhook-url.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb, useTempDir } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const newDir = useTempDir('llm-meter-tls-');
/** An address nobody connects to in these tests: it only ever passes a check. */
const PUBLIC = '93.184.216.34';

describe('the address checker', () => {
  const refused: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback, top of the range'],
    ['0.0.0.0', 'unspecified (reaches the local host)'],
    ['0.1.2.3', '"this network" 0/8'],
    ['10.1.2.3', 'private 10/8'],
    ['172.16.0.1', 'private 172.16/12'],
    ['172.31.255.255', 'private 172.16/12, top'],
    ['192.168.1.1', 'private 192.168/16'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['100.64.0.1', 'CGNAT 100.64/10'],
    ['100.127.255.255', 'CGNAT, top'],
    ['198.18.0.1', 'benchmarking 198.18/15'],
    ['198.19.255.255', 'benchmarking, top'],
    ['192.0.0.8', 'IETF protocol assignments'],
    ['192.0.2.1', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast (SSDP)'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'IPv6 unspecified'],
    ['::1', 'IPv6 loopback'],
    ['::7f00:1', 'IPv4-compatible loopback'],
    ['::127.0.0.1', 'IPv4-compatible loopback, dotted'],
    ['::ffff:0:7f00:1', 'IPv4-translated loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback, dotted'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'IPv4-mapped metadata address, spelt out'],
    ['64:ff9b::7f00:1', 'NAT64 well-known prefix carrying loopback'],
    ['64:ff9b::a00:1', 'NAT64 carrying 10.0.0.1'],
    ['64:ff9b:1::808:808', 'NAT64 local-use prefix (any address)'],
    ['2002:7f00:1::1', '6to4 carrying loopback'],
    ['2002:c0a8:101::', '6to4 carrying 192.168.1.1'],
    ['2002:a9fe:a9fe::1', '6to4 carrying the metadata address'],
    ['2001::1', 'Teredo'],
    ['2001:db8::1', 'documentation'],
    ['fc00::1', 'unique local'],
    ['fd12:3456::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local with a zone'],
    ['febf::1', 'link-local, top'],
    ['fec0::1', 'site-local (deprecated)'],
    ['ff02::1', 'multicast'],
    ['100::1', 'discard-only'],
    ['4000::1', 'reserved'],
    ['localhost', 'not an address at all'],
    ['', 'empty'],
  ];
  it.each(refused)('refuses %s (%s)', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  const accepted: [string, string][] = [
    [PUBLIC, 'public IPv4'],
    ['1.1.1.1', 'public IPv4'],
    ['100.63.255.255', 'just under CGNAT'],
    ['100.128.0.0', 'just over CGNAT'],
    ['172.32.0.1', 'just over 172.16/12'],
    ['198.20.0.1', 'just over 198.18/15'],
    ['2606:4700:4700::1111', 'public IPv6'],
    ['2001:4860:4860::8888', 'public IPv6 in 2001::/16 outside the special block'],
    ['::ffff:808:808', 'IPv4-mapped public address'],
    ['64:ff9b::808:808', 'NAT64 carrying a public address'],
    ['2002:808:808::1', '6to4 carrying a public address'],
  ];
  it.each(accepted)('accepts %s (%s)', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});

/** Blocked IPv4 ranges, written out independently of the checker's own table. */
const PRIVATE_V4: [number, number][] = [
  [0x00000000, 8],
  [0x0a000000, 8],
  [0x64400000, 10],
  [0x7f000000, 8],
  [0xa9fe0000, 16],
  [0xac100000, 12],
  [0xc0a80000, 16],
  [0xc6120000, 15],
  [0xe0000000, 4],
  [0xf0000000, 4],
];

const privateV4 = fc
  .tuple(fc.constantFrom(...PRIVATE_V4), fc.integer({ min: 0, max: 0xffffffff }))
  .map(([[net, bits], random]) => (net | (random & (2 ** (32 - bits) - 1))) >>> 0);

const hex = (n: number) => n.toString(16);
const octets = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const dotted = (n: number) => octets(n).join('.');

/** Every way the URL parser accepts to write one IPv4 address as a host. */
const v4Spellings: ((n: number, upper: boolean) => string)[] = [
  (n) => dotted(n),
  (n) => `${dotted(n)}.`,
  (n) => String(n),
  (n, upper) => `0x${upper ? hex(n).toUpperCase() : hex(n)}`,
  (n) =>
    octets(n)
      .map((o) => `0${o.toString(8)}`)
      .join('.'),
  (n) =>
    octets(n)
      .map((o) => `0x${hex(o)}`)
      .join('.'),
  (n) => `${n >>> 24}.${n & 0xffffff}`,
  (n) => `${n >>> 24}.${(n >>> 16) & 255}.${n & 0xffff}`,
  (n) => dotted(n).replace(/\d$/, (d) => `%3${d}`),
];

/** IPv6 forms that carry the IPv4 address, with hextets in random case and padding. */
const v6Spellings: ((n: number, hi: string, lo: string) => string)[] = [
  (n) => `::ffff:${dotted(n)}`,
  (_n, hi, lo) => `::ffff:${hi}:${lo}`,
  (_n, hi, lo) => `0:0:0:0:0:ffff:${hi}:${lo}`,
  (_n, hi, lo) => `0000:0000:0000:0000:0000:FFFF:${hi}:${lo}`,
  (_n, hi, lo) => `::${hi}:${lo}`,
  (n) => `::${dotted(n)}`,
  (_n, hi, lo) => `::ffff:0:${hi}:${lo}`,
  (n) => `0:0:0:0:ffff:0:${dotted(n)}`,
  (_n, hi, lo) => `64:ff9b::${hi}:${lo}`,
  (n) => `64:ff9b::${dotted(n)}`,
  (_n, hi, lo) => `0064:FF9B:0000:0000:0000:0000:${hi}:${lo}`,
  (_n, hi, lo) => `64:ff9b:1::${hi}:${lo}`,
  (_n, hi, lo) => `2002:${hi}:${lo}::1`,
  (_n, hi, lo) => `2002:${hi}:${lo}:0:0:0:0:0`,
];

const hextet = (value: number, upper: boolean, pad: boolean) => {
  const text = pad ? hex(value).padStart(4, '0') : hex(value);
  return upper ? text.toUpperCase() : text;
};

describe('a fuzz pass over the webhook URL checker', () => {
  // Were a spelling not read as an address, it would be looked up, and this lookup says public.
  const lookup: Lookup = async () => [{ address: PUBLIC, family: 4 }];

  it('refuses every IPv4 spelling of a private address', async () => {
    await fc.assert(
      fc.asyncProperty(
        privateV4,
        fc.nat(v4Spellings.length - 1),
        fc.boolean(),
        fc.constantFrom('http', 'https'),
        async (n, which, upper, scheme) => {
          const url = `${scheme}://${v4Spellings[which]!(n, upper)}:8080/hook`;
          expect(isIP(new URL(url).hostname), `${url} is read as an address`).toBe(4);
          expect(await checkWebhookUrl(url, { allowPrivate: false, lookup }), url).toMatch(/public address/);
          expect(webhookHost(url, false), url).toHaveProperty('problem');
        },
      ),
      { numRuns: 400 },
    );
  });

  it('refuses every IPv6 spelling that carries a private IPv4 address', async () => {
    await fc.assert(
      fc.asyncProperty(
        privateV4,
        fc.nat(v6Spellings.length - 1),
        fc.boolean(),
        fc.boolean(),
        async (n, which, upper, pad) => {
          const hi = hextet(n >>> 16, upper, pad);
          const lo = hextet(n & 0xffff, upper, pad);
          const url = `http://[${v6Spellings[which]!(n, hi, lo)}]/hook`;
          expect(isIP(new URL(url).hostname.slice(1, -1)), `${url} is read as an address`).toBe(6);
          expect(await checkWebhookUrl(url, { allowPrivate: false, lookup }), url).toMatch(/public address/);
          expect(webhookHost(url, false), url).toHaveProperty('problem');
        },
      ),
      { numRuns: 400 },
    );
  });

  it('refuses a name that resolves to any private address among public ones', async () => {
    await fc.assert(
      fc.asyncProperty(privateV4, fc.nat(3), async (n, at) => {
        const answers = [PUBLIC, '1.1.1.1', '8.8.8.8'];
        answers.splice(at, 0, dotted(n));
        const mixed: Lookup = async () => answers.map((address) => ({ address, family: 4 }));
        expect(
          await checkWebhookUrl('https://hooks.example/x', { allowPrivate: false, lookup: mixed }),
        ).toMatch(/public address/);
      }),
      { numRuns: 100 },
    );
  });
});

/** A loopback HTTP server that counts every connection and request it gets. */
async function startServer(
  answer: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void,
) {
  const seen = { connections: 0, requests: 0 };
  const server: Server = createServer((req, res) => {
    seen.requests++;
    req.resume();
    req.on('end', () => answer(req, res));
  });
  server.on('connection', () => {
    seen.connections++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('deliveries connect to the address that was checked', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  function setup(options: { lookup: Lookup; allowPrivate?: boolean }) {
    const store = openSqliteLedger({ path: newDb() });
    const budgets: Budgets = createBudgets({
      store,
      lookup: options.lookup,
      allowPrivateWebhooks: options.allowPrivate === true,
      pollIntervalMs: 0,
      random: () => 0.5,
    });
    closers.push(async () => {
      await budgets.stop();
      store.close();
    });
    return budgets;
  }

  it('a name that answers public for the check and loopback next reaches nothing inside', async () => {
    const internal = await startServer((_req, res) => res.writeHead(200).end('internal secret answer'));
    closers.push(internal.close);
    // Each delivery resolves the name once, and that one answer is both judged and connected to
    // (the next test shows the connection follows the injected lookup, not the system's).
    let calls = 0;
    const rebinding: Lookup = async () => [{ address: calls++ === 0 ? PUBLIC : '127.0.0.1', family: 4 }];
    const budgets = setup({ lookup: rebinding });
    const { budget } = await budgets.create({
      name: 'rebind',
      period: 'total',
      limit_usd: 1,
      thresholds: [0.5],
      webhook_url: `http://localhost:${internal.port}/hook`,
    });
    expect(calls, 'the name was checked once at creation').toBe(1);

    const test = await budgets.testAlert(budget.id);
    expect(test).toEqual({ delivered: false, status: null, error: 'refused_address' });
    expect(calls, 'one resolution for the delivery, judged and used').toBe(2);

    budgets.settle(makeRecord({ startMs: Date.now(), costNanos: 700_000_000 }));
    await budgets.deliverDue();
    expect(budgets.alerts(budget.id)[0]).toMatchObject({
      state: 'failed',
      last_status: null,
      last_error: 'refused_address',
    });
    expect(internal.seen, 'no connection reached the loopback server').toEqual({
      connections: 0,
      requests: 0,
    });
  });

  it('the connection goes where the lookup said, not where the system resolver would', async () => {
    const receiver = await startServer((_req, res) => res.writeHead(204).end());
    closers.push(receiver.close);
    const asked: string[] = [];
    // `.invalid` never resolves (RFC 6761): only the injected lookup can route this delivery.
    const lookup: Lookup = async (host) => {
      asked.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const budgets = setup({ lookup, allowPrivate: true });
    const { budget } = await budgets.create({
      name: 'pinned',
      period: 'total',
      limit_usd: 1,
      webhook_url: `http://hooks.llm-meter.invalid:${receiver.port}/hook`,
    });
    expect(await budgets.testAlert(budget.id)).toEqual({ delivered: true, status: 204, error: null });
    expect(asked).toEqual(['hooks.llm-meter.invalid']);
    expect(receiver.seen.requests).toBe(1);
  });

  it('a name with a private address among its answers is refused at delivery', async () => {
    const internal = await startServer((_req, res) => res.writeHead(200).end());
    closers.push(internal.close);
    let calls = 0;
    const lookup: Lookup = async () =>
      calls++ === 0
        ? [{ address: PUBLIC, family: 4 }]
        : [
            { address: '127.0.0.1', family: 4 },
            { address: PUBLIC, family: 4 },
          ];
    const budgets = setup({ lookup });
    const { budget } = await budgets.create({
      name: 'mixed',
      period: 'total',
      limit_usd: 1,
      webhook_url: `http://localhost:${internal.port}/hook`,
    });
    expect(await budgets.testAlert(budget.id)).toMatchObject({ delivered: false, error: 'refused_address' });
    expect(internal.seen.connections).toBe(0);
  });

  it('a redirect is not followed, and what the receiver wrote is never reported', async () => {
    const target = await startServer((_req, res) => res.writeHead(200).end('target'));
    closers.push(target.close);
    const bouncer = await startServer((_req, res) =>
      res
        .writeHead(302, { location: `http://127.0.0.1:${target.port}/` })
        .end('<html>internal details 10.0.0.7</html>'),
    );
    closers.push(bouncer.close);
    const chatty = await startServer((_req, res) =>
      res.writeHead(500, { 'content-type': 'text/plain' }).end('db password is hunter2'),
    );
    closers.push(chatty.close);
    const budgets = setup({ lookup: async () => [{ address: '127.0.0.1', family: 4 }], allowPrivate: true });

    const redirect = await budgets.create({
      name: 'redirect',
      period: 'total',
      limit_usd: 1,
      webhook_url: `http://127.0.0.1:${bouncer.port}/hook`,
    });
    const answer = await budgets.testAlert(redirect.budget.id);
    expect(answer).toEqual({ delivered: false, status: 302, error: null });
    expect(target.seen.connections, 'the redirect target was not contacted').toBe(0);

    const failing = await budgets.create({
      name: 'chatty',
      period: 'total',
      limit_usd: 1,
      thresholds: [0.5],
      webhook_url: `http://127.0.0.1:${chatty.port}/hook`,
    });
    const test = await budgets.testAlert(failing.budget.id);
    expect(test).toEqual({ delivered: false, status: 500, error: null });
    budgets.settle(makeRecord({ startMs: Date.now(), costNanos: 700_000_000 }));
    await budgets.deliverDue();
    const alerts = budgets.alerts(failing.budget.id);
    expect(alerts[0]).toMatchObject({ state: 'pending', last_status: 500 });
    expect(JSON.stringify([test, alerts])).not.toMatch(/hunter2|internal details/);
  });

  it('a receiver that streams an endless body does not hold the delivery', async () => {
    const endless = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) {}
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    closers.push(endless.close);
    const budgets = setup({ lookup: async () => [{ address: '127.0.0.1', family: 4 }], allowPrivate: true });
    const { budget } = await budgets.create({
      name: 'endless',
      period: 'total',
      limit_usd: 1,
      webhook_url: `http://127.0.0.1:${endless.port}/hook`,
    });
    expect(await budgets.testAlert(budget.id)).toEqual({ delivered: true, status: 200, error: null });
  });
});

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!hasOpenssl)('a pinned TLS connection still verifies the host name', () => {
  const NAME = 'hooks.llm-meter.test';
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  /** A loopback HTTPS server with a self-signed certificate for NAME; records the SNI it got. */
  async function startTlsServer() {
    const dir = newDir();
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1'],
        ...['-subj', `/CN=${NAME}`, '-addext', `subjectAltName=DNS:${NAME}`],
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'));
    const names: (string | false | null)[] = [];
    const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      names.push((req.socket as import('node:tls').TLSSocket).servername);
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(r)));
    return { cert, names, port: (server.address() as AddressInfo).port };
  }

  it('connects to the looked-up address with the host name as SNI and for the certificate', async () => {
    const { cert, names, port } = await startTlsServer();
    const asked: string[] = [];
    const lookup: Lookup = async (host) => {
      asked.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const agent = createPinnedAgent({ allowPrivate: true, lookup, timeoutMs: 10_000 }, { ca: cert });
    closers.push(() => agent.close());
    const { request } = await import('undici');
    const res = await request(`https://${NAME}:${port}/`, { method: 'POST', body: '{}', dispatcher: agent });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(asked).toEqual([NAME]);
    expect(names).toEqual([NAME]);

    // The certificate is checked against the name asked for, not the address connected to.
    const wrong = await request(`https://other.llm-meter.test:${port}/`, {
      method: 'POST',
      dispatcher: agent,
    }).catch((e: unknown) => e);
    expect(String((wrong as { code?: string }).code)).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(names).toHaveLength(1);

    // And a checked lookup refuses loopback before any handshake.
    const strict = createPinnedAgent({ allowPrivate: false, lookup, timeoutMs: 10_000 }, { ca: cert });
    closers.push(() => strict.close());
    const refused = await request(`https://${NAME}:${port}/`, { method: 'POST', dispatcher: strict }).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: 'ERR_LLM_METER_WEBHOOK_ADDRESS' });
    expect(names).toHaveLength(1);
  });
});
