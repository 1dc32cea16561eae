/**
 * Every way a gateway call can end ends its metered call: the record is written (a client that
 * went away is `cancelled`, with what was streamed so far counted), `inFlight` returns to 0,
 * and a blocking budget's reservation is settled, never left to expire. Real parts: the
 * simulator behind the gateway, a real SQLite file, raw clients over loopback.
 */
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import type { ProxyOptions } from '../../src/proxy/types.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { useSimulator } from '../helpers/simulator.js';

const file = useSimulator();
const newDb = useTempDb();
const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

const CLIENT_KEY = 'sk-client-secret-0123456789abcdef';

async function gateway(options: Partial<ProxyOptions> = {}) {
  const records: CallRecord[] = [];
  const meter = createMeter({
    database: newDb(),
    prices: TEST_PRICES,
    onRecord: (r) => records.push(r),
    webhookPollIntervalMs: 0,
  });
  opened.push({ close: () => meter.shutdown() });
  const gw: RunningProxy = await startProxy({
    port: 0,
    upstreams: { openai: file.sim.url },
    meter,
    ...options,
  });
  opened.push(gw);
  return { gw, meter, records };
}

/** Polls until `done()` holds; bounded in count, never a timing assertion. */
async function until(done: () => boolean, what: string, polls = 2000): Promise<void> {
  for (let i = 0; i < polls; i++) {
    if (done()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw HTTP/1.1 client: the request goes out, the response is read only as far as asked. */
function rawRequest(port: number, head: string, body = ''): Socket & { received: () => Buffer } {
  const socket = connect(port, '127.0.0.1') as Socket & { received: () => Buffer };
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.received = () => Buffer.concat(chunks);
  socket.write(head + body);
  return socket;
}

function chatRequest(user: string, extra: Record<string, unknown> = {}): string {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream: true, ...extra });
  return (
    'POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n' +
    `authorization: Bearer ${CLIENT_KEY}\r\nx-llm-meter-user: ${user}\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/**
 * An OpenAI-shaped upstream whose stream never ends on its own and that writes only as fast as
 * its reader takes (unlike the simulator, which writes ahead): `stalled()` says the whole chain
 * behind the gateway is full, which happens only once the gateway has stopped reading because
 * its client stopped. Each event carries one output token and ~8 KiB of padding, so the socket
 * buffers fill with few tokens.
 */
async function endlessUpstream() {
  const pad = 'x'.repeat(8192);
  const event = Buffer.from(
    `data: ${JSON.stringify({
      id: 'chatcmpl-endless',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-4o-mini',
      system_fingerprint: pad,
      choices: [{ index: 0, delta: { content: ' word' }, finish_reason: null }],
    })}\n\n`,
  );
  const streams = new Set<{ written: number }>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const progress = { written: 0 };
      streams.add(progress);
      const more = () => {
        while (!res.destroyed) {
          progress.written++;
          if (!res.write(event)) return void res.once('drain', more);
        }
      };
      res.on('close', () => streams.delete(progress));
      more();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open: () => streams.size,
    /** Events written so far by every open stream. */
    written: () => [...streams].reduce((n, s) => n + s.written, 0),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Until `count()` stops moving: each poll lets the event loop run everyone's I/O once more. */
async function untilStill(count: () => number, polls = 10): Promise<void> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 3000 && still < polls; i++) {
    const now = count();
    still = now === last ? still + 1 : 0;
    last = now;
    await pause(20);
  }
  if (still < polls) throw new Error('the upstream never stalled');
}

describe('gateway exits: clients that stop reading', () => {
  it('leaving mid-drain ends every metered call (cancelled, streamed tokens counted) and frees the budget it held', async () => {
    const upstream = await endlessUpstream();
    opened.unshift(upstream);
    const { gw, meter, records } = await gateway({ upstreams: { openai: upstream.url } });
    const maxTokens = 10_000;
    const { budget } = await meter.budgets!.create({
      name: 'shared',
      scope: { user: 'shared' },
      period: 'day',
      // Room for the 4 calls below and one more, and not for a fifth reservation on top of
      // four that were never released.
      limit_usd: (4.5 * maxTokens * TEST_PRICES['gpt-4o-mini'].output) / 1e6,
      action: 'block',
    });
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const client = rawRequest(gw.port, chatRequest('shared', { max_tokens: maxTokens }));
      await until(() => client.received().includes('"content"'), 'the first delta arrived');
      client.pause();
      clients.push(client);
    }
    // Every buffer between upstream and client is full: the gateway waits for `drain`.
    await untilStill(upstream.written);
    for (const client of clients) client.destroy();

    await until(() => meter.stats().inFlight === 0, 'the metered calls ended');
    await until(() => gw.stats().inFlight === 0, 'the gateway exchanges ended');
    await until(() => upstream.open() === 0, 'the upstream streams were closed');
    await meter.flush();
    expect(records.map((r) => r.outcome)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    for (const r of records) expect(r.usage?.outputTokens, 'what was streamed is counted').toBeGreaterThan(0);
    const { events } = await meter.store!.events({ limit: 10 });
    expect(events.map((e) => e.outcome)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    for (const e of events) expect(e.output_tokens).toBeGreaterThan(0);
    const view = await meter.budgets!.get(budget.id);
    expect(view!.reserved_usd, 'no reservation is left behind').toBe(0);
    expect(view!.spent_usd).toBeGreaterThan(0);
  });

  it('a well-behaved client on the same budget is served afterwards', async () => {
    const upstream = await endlessUpstream();
    opened.unshift(upstream);
    const { gw, meter } = await gateway({ upstreams: { openai: upstream.url, real: file.sim.url } });
    const maxTokens = 10_000;
    await meter.budgets!.create({
      name: 'shared',
      scope: { user: 'shared' },
      period: 'day',
      limit_usd: (4.5 * maxTokens * TEST_PRICES['gpt-4o-mini'].output) / 1e6,
      action: 'block',
    });
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const client = rawRequest(gw.port, chatRequest('shared', { max_tokens: maxTokens }));
      await until(() => client.received().includes('"content"'), 'the first delta arrived');
      client.pause();
      clients.push(client);
    }
    await untilStill(upstream.written);
    for (const client of clients) client.destroy();
    await until(() => gw.stats().inFlight === 0, 'the gateway exchanges ended');

    file.sim.enqueue({ outputTokens: 5 });
    const polite = rawRequest(
      gw.port,
      chatRequest('shared', { max_tokens: maxTokens }).replace('/v1/chat', '/real/v1/chat'),
    );
    await until(() => polite.received().includes('\r\n\r\n'), 'the polite call was answered');
    await until(
      () => !polite.received().includes('text/event-stream') || polite.received().includes('[DONE]'),
      'the polite stream finished',
    );
    polite.destroy();
    expect(polite.received().toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    await until(() => meter.stats().inFlight === 0, 'every metered call ended');
  });

  it('a client that stops reading but stays connected is cut by the total timeout, recorded as timeout', async () => {
    const upstream = await endlessUpstream();
    opened.unshift(upstream);
    const { gw, meter, records } = await gateway({
      upstreams: { openai: upstream.url },
      timeouts: { headersMs: 3000, idleMs: 3000, totalMs: 3000 },
    });
    const client = rawRequest(gw.port, chatRequest('stalled'));
    await until(() => client.received().includes('"content"'), 'the first delta arrived');
    client.pause();
    await untilStill(upstream.written);
    // The client neither reads nor leaves: only the gateway's own deadline can end the call.
    await until(() => gw.stats().inFlight === 0, 'the gateway cut the exchange', 4000);
    await until(() => meter.stats().inFlight === 0, 'the metered call ended');
    await until(() => upstream.open() === 0, 'the upstream stream was closed');
    client.destroy();
    await meter.flush();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ outcome: 'error', errorType: 'timeout', httpStatus: 200 });
  });

  it('shutdown past its grace period ends a call stuck on a client that stopped reading', async () => {
    const upstream = await endlessUpstream();
    opened.unshift(upstream);
    const { gw, meter, records } = await gateway({
      upstreams: { openai: upstream.url },
      shutdownGraceMs: 50,
    });
    const client = rawRequest(gw.port, chatRequest('stalled'));
    await until(() => client.received().includes('"content"'), 'the first delta arrived');
    client.pause();
    await untilStill(upstream.written);
    await gw.close();
    await until(() => meter.stats().inFlight === 0, 'the metered call ended');
    client.destroy();
    await meter.flush();
    expect(records.map((r) => r.outcome)).toEqual(['cancelled']);
    expect(gw.stats().inFlight).toBe(0);
  });

  it('a client gone before the response headers: the upstream call is aborted and recorded cancelled', async () => {
    const { gw, meter, records } = await gateway();
    file.sim.enqueue({ fault: 'slow_headers', slowHeadersMs: 5000 });
    const client = rawRequest(gw.port, chatRequest('impatient', { stream: false }));
    await until(() => file.sim.calls.length === 1, 'the call reached the upstream');
    client.destroy();
    expect((await file.sim.waitForCall()).clientClosed).toBe(true);
    await until(() => meter.stats().inFlight === 0 && gw.stats().inFlight === 0, 'everything ended');
    await meter.flush();
    expect(records.map((r) => r.outcome)).toEqual(['cancelled']);
  });
});
