/**
 * Who may use a gateway that requires no gateway key. Without `requireKey` the gateway is for
 * this machine only: `startProxy` refuses a host other machines can reach unless
 * `insecureNoAuth`, and over loopback a web page in a local browser cannot drive it (DNS
 * rebinding: a hostile `Host` → 421; a cross-site `Origin` or `Sec-Fetch-Site` → 403). Raw
 * requests over loopback, the simulator upstream, which must see none of the refused calls.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import type { ProxyOptions } from '../../src/proxy/types.js';
import { chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { useSimulator } from '../helpers/simulator.js';

const file = useSimulator();
const KEY = 'lmk_perimeter_0123456789abcdef0123456789';
let records: CallRecord[] = [];
let meter: ReturnType<typeof createMeter> | null = null;
afterEach(async () => {
  await meter?.shutdown();
  meter = null;
  records = [];
});

async function gateway(options: Partial<ProxyOptions> = {}): Promise<RunningProxy> {
  meter = createMeter({ database: false, prices: TEST_PRICES, onRecord: (r) => records.push(r) });
  return file.closeAfterTest(
    await startProxy({ port: 0, upstreams: { openai: file.sim.url }, meter, ...options }),
  );
}

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages });

/** A raw request to the gateway on 127.0.0.1 with exactly these headers (Host included). */
function send(
  port: number,
  headers: Record<string, string>,
  { method = 'POST', path = '/v1/chat/completions', body = CHAT } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer sk-test',
          'content-length': String(Buffer.byteLength(body)),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function refusal(start: Promise<RunningProxy>): Promise<unknown> {
  try {
    // On code without the check it binds: close it, then fail below.
    await (await start).close();
    return null;
  } catch (error) {
    return error;
  }
}

describe('startProxy: where a gateway without keys may listen', () => {
  it.each(['0.0.0.0', '::'])('host %j without requireKey throws, naming the options', async (host) => {
    const error = await refusal(startProxy({ port: 0, host, upstreams: { openai: file.sim.url } }));
    expect(error, 'refused').toMatchObject({ name: 'InvalidOptionError' });
    expect((error as Error).message).toMatch(/`host`/);
    expect((error as Error).message).toMatch(/`requireKey`/);
    expect((error as Error).message).toMatch(/`insecureNoAuth: true`/);
  });

  it('insecureNoAuth binds where told, and says so on the logger', async () => {
    const warnings: string[] = [];
    const gw = await gateway({ host: '0.0.0.0', insecureNoAuth: true, logger: (m) => warnings.push(m) });
    expect(warnings.join('\n')).toMatch(/WARNING.*0\.0\.0\.0.*no gateway keys/s);
    const ok = await send(gw.port, { host: `127.0.0.1:${gw.port}` });
    expect(ok.status, ok.text).toBe(200);
  });

  it('rejects a non-boolean insecureNoAuth', async () => {
    const error = await refusal(
      startProxy({ port: 0, upstreams: { openai: file.sim.url }, insecureNoAuth: 'yes' as never }),
    );
    expect((error as Error).message).toMatch(/`insecureNoAuth`/);
  });
});

describe('gateway without keys: DNS rebinding and cross-site pages', () => {
  it.each([
    ['a rebound name', 'attacker.example'],
    ['a rebound name with the port', 'attacker.example:PORT'],
    ['a name under localhost', 'localhost.attacker.example:PORT'],
    ['a name that starts like 127.0.0.1', '127.0.0.1.nip.io:PORT'],
    ['a LAN address', '10.0.0.1:PORT'],
    ['the wildcard', '0.0.0.0:PORT'],
  ])('a Host that is %s → 421, and nothing reaches the upstream or the meter', async (_name, host) => {
    const gw = await gateway();
    const hostile = host.replace('PORT', String(gw.port));
    for (const [method, path] of [
      ['POST', '/v1/chat/completions'],
      ['GET', '/v1/models'],
      ['POST', '/nowhere'],
    ] as const) {
      const answer = await send(gw.port, { host: hostile }, { method, path });
      expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(421);
      expect(answer.text).toMatch(/loopback/);
      expect(answer.text, 'the answer does not quote the Host').not.toContain(hostile);
    }
    await meter!.flush();
    expect(file.sim.calls).toHaveLength(0);
    expect(records).toHaveLength(0);
  });

  it.each(['127.0.0.1:PORT', 'localhost:PORT', 'LOCALHOST', '[::1]:PORT', '127.8.8.8:1'])(
    'Host %s is answered',
    async (host) => {
      const gw = await gateway();
      const answer = await send(gw.port, { host: host.replace('PORT', String(gw.port)) });
      expect(answer.status, answer.text).toBe(200);
    },
  );

  it.each<[string, Record<string, string>]>([
    ['another site', { origin: 'http://attacker.example' }],
    ['another site over https', { origin: 'https://attacker.example:8788' }],
    ['an opaque origin (sandboxed frame)', { origin: 'null' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    [
      'a text/plain POST (no CORS preflight)',
      { origin: 'http://attacker.example', 'content-type': 'text/plain' },
    ],
  ])('a browser request from %s → 403, and nothing reaches the upstream', async (_name, headers) => {
    const gw = await gateway();
    for (const method of ['POST', 'OPTIONS', 'GET']) {
      const answer = await send(gw.port, { host: `127.0.0.1:${gw.port}`, ...headers }, { method });
      expect(answer.status, `${method}: ${answer.text}`).toBe(403);
      expect(answer.text).not.toContain('attacker.example');
    }
    expect(file.sim.calls).toHaveLength(0);
  });

  it.each<[string, Record<string, string>]>([
    ['a page on localhost', { origin: 'http://localhost:3000', 'sec-fetch-site': 'same-site' }],
    ['a page on 127.0.0.1', { origin: 'http://127.0.0.1:5173' }],
    ['a same-origin fetch', { 'sec-fetch-site': 'same-origin' }],
    ['a typed URL', { 'sec-fetch-site': 'none' }],
  ])('a browser request from %s is answered', async (_name, headers) => {
    const gw = await gateway();
    const answer = await send(gw.port, { host: `localhost:${gw.port}`, ...headers });
    expect(answer.status, answer.text).toBe(200);
  });

  it('with insecureNoAuth, IP-literal Hosts are answered and DNS names still refused', async () => {
    const gw = await gateway({ insecureNoAuth: true, logger: () => {} });
    expect((await send(gw.port, { host: `192.0.2.7:${gw.port}` })).status).toBe(200);
    expect((await send(gw.port, { host: `[2001:db8::1]:${gw.port}` })).status).toBe(200);
    expect((await send(gw.port, { host: `attacker.example:${gw.port}` })).status).toBe(421);
    const crossSite = await send(gw.port, {
      host: `192.0.2.7:${gw.port}`,
      origin: 'http://attacker.example',
    });
    expect(crossSite.status).toBe(403);
  });

  it('with requireKey, any Host is answered (the key is the defence; proxies rewrite Host)', async () => {
    const gw = await gateway({
      requireKey: true,
      keys: { [KEY]: { user: 'alice', providerKeys: { openai: 'sk-upstream' } } },
    });
    const answer = await send(gw.port, { host: 'gateway.internal.example', authorization: `Bearer ${KEY}` });
    expect(answer.status, answer.text).toBe(200);
    const noKey = await send(gw.port, { host: 'attacker.example' });
    expect(noKey.status).toBe(401);
  });
});

describe('gateway errors do not reflect the request', () => {
  it('a path no upstream serves: 404 without the path', async () => {
    const gw = await gateway();
    const marker = 'reflected-marker-7f3a';
    const answer = await send(gw.port, { host: `127.0.0.1:${gw.port}` }, { path: `/${marker}/x` });
    expect(answer.status).toBe(404);
    expect(answer.text).toContain('not_found_error');
    expect(answer.text).not.toContain(marker);
  });
});
