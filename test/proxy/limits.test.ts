/**
 * What the gateway holds for a client: a request without a valid gateway key is refused on its
 * headers, before any body byte is read; connections and request-body bytes in memory are capped
 * per client (remote address) and in total, each answered in the provider's error shape. Raw
 * clients over loopback (a body can be declared and never sent); `127.0.0.2` is another client.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import type { ProxyOptions } from '../../src/proxy/types.js';
import { chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { useSimulator } from '../helpers/simulator.js';

const file = useSimulator();
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

const KEY = 'lmk_alice_0123456789abcdef';
const KEYS = { [KEY]: { user: 'alice', providerKeys: { openai: 'sk-upstream-key' } } };

async function gateway(options: Partial<ProxyOptions> = {}): Promise<RunningProxy> {
  const meter = createMeter({ database: false, prices: TEST_PRICES });
  const gw = await startProxy({ port: 0, upstreams: { openai: file.sim.url }, meter, ...options });
  file.closeAfterTest({ close: () => meter.shutdown() });
  file.closeAfterTest(gw);
  return gw;
}

async function until(done: () => boolean, what: string, polls = 2000): Promise<void> {
  for (let i = 0; i < polls; i++) {
    if (done()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

interface Raw {
  socket: Socket;
  text: () => string;
  closed: () => boolean;
  /** The status of the first complete response head, or null. */
  status: () => number | null;
}

function raw(port: number, localAddress = '127.0.0.1'): Raw {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(socket);
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  return {
    socket,
    text: () => text,
    closed: () => closed,
    status: () => {
      const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n[\s\S]*?\r\n\r\n/.exec(text);
      return m ? Number(m[1]) : null;
    },
  };
}

const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages });

function head(headers: Record<string, string | number>, target = '/v1/chat/completions'): string {
  return `POST ${target} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n${Object.entries(
    headers,
  )
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

/** The JSON body of the first response in `text` (content-length or chunked). */
function errorOf(text: string): { type?: string; message?: string } {
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  const json = body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1);
  return (JSON.parse(json) as { error: { type?: string; message?: string } }).error;
}

describe('gateway limits: refused on headers, before the body', () => {
  it('no gateway key: 401 while the declared 1 GiB body is still unsent, and the connection closes', async () => {
    const gw = await gateway({ requireKey: true, keys: KEYS });
    const c = raw(gw.port);
    c.socket.write(head({ authorization: 'Bearer sk-not-a-gateway-key', 'content-length': 2 ** 30 }));
    c.socket.write('{"model":"gpt-4o-mini","messages":[');
    await until(() => c.status() !== null, 'an answer before the body was sent');
    expect(c.status()).toBe(401);
    expect(errorOf(c.text()).type).toBe('authentication_error');
    expect(c.text()).toMatch(/\r\nconnection: close\r\n/i);
    await until(c.closed, 'the gateway closed the connection instead of reading 1 GiB');
    expect(gw.stats().bodyBytesInFlight).toBe(0);
    expect(file.sim.calls).toHaveLength(0);
  });

  it('no gateway key: 401 whatever the path, so routes cannot be probed; a hostile target is still 400', async () => {
    const gw = await gateway({ requireKey: true, keys: KEYS });
    const probe = async (target: string) => {
      const c = raw(gw.port);
      c.socket.write(head({ 'content-length': 2 }, target) + '{}');
      await until(() => c.status() !== null, 'an answer');
      return c.status();
    };
    expect(await probe('/secret-upstream/v1/chat/completions')).toBe(401);
    expect(await probe('/v1/chat/completions')).toBe(401);
    expect(await probe('/openai/../../raw')).toBe(400);
  });

  it('Expect: 100-continue with a bad key gets the 401 and never a 100', async () => {
    const gw = await gateway({ requireKey: true, keys: KEYS });
    const c = raw(gw.port);
    c.socket.write(
      head({ 'x-api-key': 'lmk_wrong_0123456789abcdef', 'content-length': 5000, expect: '100-continue' }),
    );
    await until(() => c.status() !== null, 'an answer');
    expect(c.status()).toBe(401);
    expect(c.text()).not.toContain('100 Continue');
  });

  it('Expect: 100-continue with a good key gets the 100, then the call goes through', async () => {
    const gw = await gateway({ requireKey: true, keys: KEYS });
    const c = raw(gw.port);
    c.socket.write(
      head({
        authorization: `Bearer ${KEY}`,
        'content-length': Buffer.byteLength(chatBody),
        expect: '100-continue',
      }),
    );
    await until(() => c.text().includes('100 Continue'), 'the 100 Continue');
    c.socket.write(chatBody);
    await until(() => /HTTP\/1\.1 200 /.test(c.text()), 'the answer');
    expect(file.sim.calls[0]!.headers.authorization).toBe('Bearer sk-upstream-key');
  });

  it('Expect: 100-continue with a declared body over maxRequestBodyBytes: 413 and never a 100', async () => {
    const gw = await gateway({ maxRequestBodyBytes: 4096 });
    const c = raw(gw.port);
    c.socket.write(head({ authorization: 'Bearer sk-x', 'content-length': 5000, expect: '100-continue' }));
    await until(() => c.status() !== null, 'an answer');
    expect(c.status()).toBe(413);
    expect(c.text()).not.toContain('100 Continue');
  });

  it('a declared body over maxRequestBodyBytes: 413 without reading it', async () => {
    const gw = await gateway({ maxRequestBodyBytes: 4096 });
    const c = raw(gw.port);
    c.socket.write(head({ authorization: 'Bearer sk-x', 'content-length': 2 ** 30 }));
    await until(() => c.status() !== null, 'an answer before the body was sent');
    expect(c.status()).toBe(413);
    expect(errorOf(c.text()).type).toBe('request_too_large');
    await until(c.closed, 'the connection closed');
  });

  it('a chunked body that grows over maxRequestBodyBytes: 413, and reading stops there', async () => {
    const gw = await gateway({ maxRequestBodyBytes: 4096 });
    const c = raw(gw.port);
    c.socket.write(head({ authorization: 'Bearer sk-x', 'transfer-encoding': 'chunked' }));
    const chunk = 'x'.repeat(1024);
    for (let i = 0; i < 5; i++) c.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    await until(() => c.status() !== null, 'an answer before the body ended');
    expect(c.status()).toBe(413);
    await until(c.closed, 'the connection closed');
    expect(gw.stats().bodyBytesInFlight).toBe(0);
  });
});

describe('gateway limits: per client and in total', () => {
  it('connections per client: the one over the cap gets 429 and is closed; another address is not counted', async () => {
    const gw = await gateway({ maxConnectionsPerClient: 2 });
    const a = raw(gw.port);
    const b = raw(gw.port);
    await until(() => a.socket.readyState === 'open' && b.socket.readyState === 'open', 'two connected');
    const over = raw(gw.port);
    const elsewhere = raw(gw.port, '127.0.0.2');
    const ask = (c: Raw) =>
      c.socket.write(
        head({ authorization: 'Bearer sk-x', 'content-length': Buffer.byteLength(chatBody) }) + chatBody,
      );
    ask(over);
    await until(() => over.status() !== null, 'the answer to the third connection');
    expect(over.status()).toBe(429);
    expect(errorOf(over.text())).toMatchObject({ type: 'rate_limit_error' });
    expect(over.text()).toMatch(/\r\nretry-after: 1\r\n/i);
    await until(over.closed, 'the connection over the cap is closed');
    ask(elsewhere);
    ask(a);
    await until(() => elsewhere.status() !== null && a.status() !== null, 'both answered');
    expect([elsewhere.status(), a.status()]).toEqual([200, 200]);
    // A closed connection frees its place.
    b.socket.destroy();
    await until(() => b.closed(), 'closed');
    let next = raw(gw.port);
    for (let i = 0; i < 50; i++) {
      ask(next);
      await until(() => next.status() !== null || next.closed(), 'an answer');
      if (next.status() === 200) break;
      // The gateway may not have seen b's close yet: try again on a new connection.
      next = raw(gw.port);
    }
    expect(next.status()).toBe(200);
  });

  it('body bytes per client: bodies held in memory count until their call ends; more is 429 unread', async () => {
    const gw = await gateway({ maxRequestBodyBytes: 4096, maxBodyBytesPerClient: 8192 });
    const held = [raw(gw.port), raw(gw.port)];
    for (const c of held) {
      c.socket.write(head({ authorization: 'Bearer sk-x', 'content-length': 4096 }));
      c.socket.write('{"model":"gpt-4o-mini",');
    }
    await until(() => gw.stats().bodyBytesInFlight === 8192, 'both declared bodies charged');
    const third = raw(gw.port);
    third.socket.write(head({ authorization: 'Bearer sk-x', 'content-length': 100 }));
    await until(() => third.status() !== null, 'an answer before the body was sent');
    expect(third.status()).toBe(429);
    expect(errorOf(third.text()).message).toMatch(/from one client: at most 8192/);
    // Another client is not held back by this one.
    const other = raw(gw.port, '127.0.0.2');
    other.socket.write(
      head({ authorization: 'Bearer sk-x', 'content-length': Buffer.byteLength(chatBody) }) + chatBody,
    );
    await until(() => other.status() !== null, 'the other client answered');
    expect(other.status()).toBe(200);
    // A client that leaves mid-body releases what it was charged.
    for (const c of held) c.socket.destroy();
    await until(() => gw.stats().bodyBytesInFlight === 0, 'released');
    await until(() => gw.stats().inFlight === 0, 'no exchange left');
  });

  it('body bytes in total: a second client is refused while the first holds the whole budget', async () => {
    const gw = await gateway({
      maxRequestBodyBytes: 4096,
      maxBodyBytesPerClient: 8192,
      maxBodyBytesInFlight: 8192,
    });
    const held = [raw(gw.port), raw(gw.port)];
    for (const c of held) c.socket.write(head({ authorization: 'Bearer sk-x', 'content-length': 4096 }));
    await until(() => gw.stats().bodyBytesInFlight === 8192, 'charged');
    const other = raw(gw.port, '127.0.0.2');
    other.socket.write(head({ authorization: 'Bearer sk-x', 'content-length': 10 }));
    await until(() => other.status() !== null, 'an answer');
    expect(other.status()).toBe(429);
    expect(errorOf(other.text()).message).toMatch(/in flight: at most 8192/);
  });

  it('options are checked where they enter', async () => {
    await expect(
      startProxy({
        port: 0,
        upstreams: { openai: file.sim.url },
        maxRequestBodyBytes: 4096,
        maxBodyBytesPerClient: 100,
      }),
    ).rejects.toThrow(/`maxBodyBytesPerClient` to be at least `maxRequestBodyBytes`/);
    await expect(
      startProxy({ port: 0, upstreams: { openai: file.sim.url }, maxConnectionsPerClient: 0 }),
    ).rejects.toThrow(/`maxConnectionsPerClient` to be a positive integer/);
  });
});
