/**
 * Abuse of the gateway, bounded in count: random request lines, paths (dot segments, encodings,
 * absolute forms), headers (duplicate and conflicting framing, hop-by-hop, attribution garbage,
 * odd bytes) and bodies (valid chats, broken JSON, short or over-declared), sent raw over
 * loopback to a gateway in front of the simulator. Whatever arrives, the gateway never answers
 * 5xx of its own, never crashes, never logs an internal failure, and ends with nothing in flight
 * and every metered call recorded.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import { chatMessages, TEST_PRICES } from '../helpers/harness.js';
import { useSimulator } from '../helpers/simulator.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 160);
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_612);

const file = useSimulator({ defaults: { outputTokens: 3, msPerToken: 0 } });
let gw: RunningProxy;
let meter: ReturnType<typeof createMeter>;
const records: CallRecord[] = [];
const logged: string[] = [];
const KEY = 'lmk_fuzz_0123456789abcdef';

beforeAll(async () => {
  meter = createMeter({ database: false, prices: TEST_PRICES, onRecord: (r) => records.push(r) });
  gw = await startProxy({
    port: 0,
    upstreams: { openai: `${file.sim.url}/`, anthropic: file.sim.url, groq: `${file.sim.url}/openai` },
    meter,
    requireKey: false,
    maxRequestBodyBytes: 64 * 1024,
    logger: (message) => logged.push(message),
  });
});
afterAll(async () => {
  await gw.close();
  await meter.shutdown();
});

const chat = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, max_tokens: 5 });
const chatStream = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, stream: true });
const messages = JSON.stringify({
  model: 'claude-sonnet-4-5',
  max_tokens: 5,
  messages: [{ role: 'user', content: 'hi' }],
});

const segment = fc.constantFrom(
  'v1',
  'chat',
  'completions',
  'messages',
  'openai',
  'anthropic',
  'groq',
  'nowhere',
  '..',
  '.',
  '%2e%2e',
  '%2E.',
  '..%2f..',
  '%2f',
  '%5c',
  '\\',
  '',
  '%00',
  '%ff',
  '%',
  '%zz',
  'é',
  'models',
  'm:generateContent',
  'v1beta',
  'api',
  '~',
  "';--",
);
const path = fc.oneof(
  fc.constantFrom(
    '/v1/chat/completions',
    '/openai/v1/chat/completions',
    '/groq/v1/chat/completions',
    '/v1/messages',
    '/anthropic/v1/messages',
    '/v1/models',
    '/openai/../../raw',
    '/openai/%2e%2e/raw',
    'http://evil.example/v1/chat/completions',
    '*',
    'evil.example:80',
    '/',
  ),
  fc.array(segment, { minLength: 1, maxLength: 7 }).map((s) => `/${s.join('/')}`),
  fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
);
const query = fc.constantFrom('', '?a=1', '?key=sk-secret-in-query', '?%zz', '?#', '?beta=true&x=%2e%2e');

type Header = [string, string];
const header: fc.Arbitrary<Header> = fc.oneof(
  fc.constantFrom<Header>(
    ['content-type', 'application/json'],
    ['content-type', 'text/plain'],
    ['authorization', 'Bearer sk-client-key'],
    ['authorization', `Bearer ${KEY}`],
    ['authorization', 'Basic Zm9vOmJhcg=='],
    ['x-api-key', 'sk-ant-client'],
    ['x-llm-meter-user', 'alice'],
    ['x-llm-meter-tags', '{"user":"mallory","team":"x"}'],
    ['x-llm-meter-tags', '{not json'],
    ['x-llm-meter-tags', 'a=%zz,b=%41,,=,c'],
    ['x-llm-meter-project', ''],
    ['connection', 'keep-alive, x-hop, authorization'],
    ['connection', 'upgrade'],
    ['upgrade', 'websocket'],
    ['x-hop', 'per-connection'],
    ['te', 'trailers'],
    ['transfer-encoding', 'chunked'],
    ['transfer-encoding', 'gzip, chunked'],
    ['transfer-encoding', 'chunked, identity'],
    ['content-length', '3'],
    ['content-length', '-1'],
    ['content-length', '1e3'],
    ['content-length', '99999999999'],
    ['expect', '100-continue'],
    ['expect', 'something-else'],
    ['accept-encoding', 'br, gzip'],
    ['host', 'evil.example'],
    ['x-forwarded-host', 'evil.example'],
    ['proxy-authorization', 'Basic abc'],
    ['x-sim-options', '{"fault":"garbage"}'],
    ['x-sim-options', '{not json'],
    ['x-sim-options', '{"fault":"cut_stream","faultAfterTokens":1}'],
    ['x-sim-options', '{"fault":"server_error"}'],
    ['x-stainless-timeout', '1'],
    ['x-odd', 'caf\u00e9 \u00ff'],
  ),
  fc
    .tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.stringMatching(/^[ -~]{0,40}$/))
    .map(([n, v]): Header => [`x-${n}`, v.trim()]),
);

const body = fc.oneof(
  fc.constantFrom(chat, chatStream, messages, '', '{}', '{"model":', 'null', '[]', '{"messages":"x"}'),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom('x'.repeat(70 * 1024)),
);

/** How the body is framed: as declared, chunked, declared longer than sent, or not at all. */
const framing = fc.constantFrom('length', 'length', 'length', 'chunked', 'short', 'none');
const method = fc.constantFrom(
  'POST',
  'POST',
  'POST',
  'GET',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'TRACE',
  'TRACK',
  'PROPFIND',
  'M-SEARCH',
  'FOO',
);

const garbage = fc.record({
  method,
  target: fc.tuple(path, query).map(([p, q]) => p + q),
  headers: fc.array(header, { maxLength: 6 }),
  body,
  framing,
});
/** A real call with a few odd headers: the calls that reach the meter and the simulator. */
const nearlyValid = fc.record({
  method: fc.constant('POST'),
  target: fc.constantFrom(
    '/v1/chat/completions',
    '/openai/v1/chat/completions',
    '/groq/v1/chat/completions',
    '/openai/v1/x/../chat/completions',
    '/v1/messages',
  ),
  headers: fc
    .array(header, { maxLength: 3 })
    .map((extra): Header[] => [
      ['content-type', 'application/json'],
      ['authorization', 'Bearer sk-client-key'],
      ...extra.filter(([n]) => n !== 'content-length' && n !== 'transfer-encoding' && n !== 'host'),
    ]),
  body: fc.constantFrom(chat, chatStream, messages),
  framing: fc.constantFrom('length', 'chunked'),
});
const request = fc.oneof({ arbitrary: nearlyValid, weight: 2 }, { arbitrary: garbage, weight: 3 });
type Request = typeof garbage extends fc.Arbitrary<infer T> ? T : never;

function render(r: Request): Buffer {
  const bytes = Buffer.from(r.body, 'latin1');
  const framingHeaders =
    r.framing === 'length'
      ? `content-length: ${bytes.length}\r\n`
      : r.framing === 'short'
        ? `content-length: ${bytes.length + 10}\r\n`
        : r.framing === 'chunked'
          ? 'transfer-encoding: chunked\r\n'
          : '';
  const payload =
    r.framing === 'chunked'
      ? Buffer.concat([
          Buffer.from(bytes.length > 0 ? `${bytes.length.toString(16)}\r\n` : ''),
          bytes,
          Buffer.from(bytes.length > 0 ? '\r\n0\r\n\r\n' : '0\r\n\r\n'),
        ])
      : r.framing === 'none'
        ? Buffer.alloc(0)
        : bytes;
  const head =
    `${r.method} ${r.target} HTTP/1.1\r\nhost: localhost\r\n` +
    r.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('') +
    `${framingHeaders}connection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

/**
 * Sends one request and collects what comes back until the gateway closes the connection, or
 * gives up (a body declared and never sent waits for ever) and leaves: a client gone mid-request.
 * Never half-closes: Node aborts a request whose client half-closed.
 */
async function send(bytes: Buffer, patience = 200): Promise<string> {
  const socket = connect(gw.port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  socket.write(bytes);
  for (let i = 0; i < patience && !closed; i++) await new Promise((r) => setTimeout(r, 5));
  socket.destroy();
  return text;
}

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 4000; i++) {
    if (done()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

describe('gateway abuse (bounded fuzz)', () => {
  it(`${RUNS} hostile requests: no 5xx of the gateway's own, no crash, nothing left in flight`, async () => {
    const cases = fc.sample(request, { numRuns: RUNS, seed: SEED });
    const ownFailures: string[] = [];
    const statuses = new Map<number, number>();
    // A few at a time: concurrency is part of the abuse, and the count stays bounded.
    for (let i = 0; i < cases.length; i += 4) {
      const batch = cases.slice(i, i + 4);
      const answers = await Promise.all(batch.map((r) => send(render(r), r.framing === 'short' ? 2 : 200)));
      answers.forEach((text, j) => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500 && text.includes('(llm-meter gateway)')) {
          ownFailures.push(
            `${status} for ${JSON.stringify(render(batch[j]!).toString('latin1').slice(0, 400))}`,
          );
        }
        expect(text, 'no key or internal detail in any answer').not.toMatch(/sk-secret-in-query|at \w+ \(/);
      });
    }
    expect(ownFailures, `seed ${SEED}`).toEqual([]);
    expect(
      logged.filter((m) => m.includes('request failed')),
      'no internal failure',
    ).toEqual([]);
    expect(statuses.get(200) ?? 0, 'some of the requests were real calls').toBeGreaterThan(0);

    await until(() => gw.stats().inFlight === 0, 'no gateway exchange left');
    await until(() => meter.stats().inFlight === 0, 'no metered call left');
    await meter.flush();
    expect(gw.stats().bodyBytesInFlight).toBe(0);
    expect(meter.stats().calls, 'every metered call has its record').toBe(records.length);
    expect(gw.stats().requests).toBeLessThanOrEqual(RUNS);
    expect(gw.stats().gatewayErrors).toBeLessThanOrEqual(gw.stats().requests);

    // Still serving.
    const before = records.length;
    const text = await send(
      render({
        method: 'POST',
        target: '/v1/chat/completions',
        headers: [
          ['content-type', 'application/json'],
          ['authorization', 'Bearer sk-x'],
        ],
        body: chat,
        framing: 'length',
      }),
    );
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    await meter.flush();
    expect(records.length).toBe(before + 1);
  });
});
