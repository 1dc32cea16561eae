/**
 * Request targets that would leave an upstream's base path (dot segments, encoded or not,
 * encoded slashes, backslashes) or that are not origin-form (absolute, authority, asterisk) are
 * refused with 400 and reach nobody. Sent as raw request lines over a socket: fetch and the
 * SDKs would normalise them first. The upstreams are a recording server under base paths.
 */
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';

const seen: string[] = [];
const upstream = createServer((req, res) => {
  seen.push(req.url ?? '');
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});
let gw: RunningProxy;
let meter: ReturnType<typeof createMeter>;

beforeAll(async () => {
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  meter = createMeter({ database: false });
  gw = await startProxy({
    port: 0,
    upstreams: { openai: `${origin}/base`, gemini: `${origin}/gem/` },
    meter,
  });
});
afterAll(async () => {
  await gw.close();
  await meter.shutdown();
  await new Promise((r) => upstream.close(r));
});

/** One raw request line; resolves with the status line's code and the body. */
function send(method: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(
      `${method} ${target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\n` +
        'authorization: Bearer sk-client\r\ncontent-length: 2\r\n\r\n{}',
    );
  });
}

describe('gateway routes: hostile request targets', () => {
  const refused: [string, string, string, number][] = [
    ['dot segments climbing out of the prefix', 'POST', '/openai/../../raw/v1/chat/completions', 400],
    ['one dot segment out of the prefix', 'POST', '/openai/../raw/v1/chat/completions', 400],
    ['encoded dot segments', 'POST', '/openai/%2e%2e/raw/v1/chat/completions', 400],
    ['upper-case encoded dot segments', 'POST', '/openai/%2E%2E/%2E%2E/raw', 400],
    ['half-encoded dot segments', 'POST', '/openai/.%2e/raw', 400],
    ['dot segments deeper down', 'POST', '/openai/v1/../../raw', 400],
    ['dot segments behind encoded slashes', 'POST', '/openai/..%2f..%2fraw', 400],
    ['upper-case encoded slashes', 'POST', '/openai/v1/..%2F..%2F..%2Fraw', 400],
    ['an encoded slash in the prefix', 'POST', '/openai%2f..%2fraw', 400],
    ['an encoded prefix with an encoded slash', 'POST', '/%6fpenai%2fv1/chat/completions', 400],
    ['encoded backslashes', 'POST', '/openai/%5c..%5craw', 400],
    ['a leading dot segment', 'POST', '/../openai/v1/chat/completions', 400],
    ['a leading single dot', 'POST', '/./openai/v1/chat/completions', 400],
    ['a shape route climbing above the root', 'POST', '/v1/../../raw/v1/chat/completions', 400],
    ['absolute-form', 'POST', 'http://evil.example/openai/v1/chat/completions', 400],
    ['absolute-form on a Gemini shape', 'POST', 'http://evil.example/x/models/m:generateContent', 400],
    ['absolute-form naming the upstream itself', 'POST', 'http://127.0.0.1:1/raw', 400],
    ['authority-form', 'POST', 'evil.example:443', 400],
    ['asterisk-form', 'OPTIONS', '*', 400],
    ['a fragment', 'POST', '/openai/v1/chat/completions#x', 400],
    ['a network-path reference routes nowhere', 'POST', '//evil.example/v1/chat/completions', 404],
    ['a method fetch cannot send (was a 502 of the gateway)', 'TRACE', '/v1/chat/completions', 405],
  ];
  for (const [name, method, target, status] of refused) {
    it(`${name}: ${method} ${target} → ${status}, nothing forwarded`, async () => {
      seen.length = 0;
      const res = await send(method, target);
      expect(res.status).toBe(status);
      expect(seen, 'the upstream saw nothing').toEqual([]);
      const type = status === 404 ? 'not_found_error' : 'invalid_request_error';
      if (res.body.includes('{'))
        expect(JSON.parse(res.body.slice(res.body.indexOf('{'))).error.type).toBe(type);
    });
  }

  const allowed: [string, string, string][] = [
    ['a plain prefix', '/openai/v1/chat/completions', '/base/v1/chat/completions'],
    ['a dot segment that stays inside', '/openai/v1/x/../chat/./completions', '/base/v1/chat/completions'],
    ['by shape', '/v1/chat/completions?a=1', '/base/v1/chat/completions?a=1'],
    ['an encoded slash deep in a segment, no dots', '/openai/v1/models/a%2Fb', '/base/v1/models/a%2Fb'],
    [
      'a trailing slash base',
      '/gemini/v1beta/models/m:generateContent',
      '/gem/v1beta/models/m:generateContent',
    ],
  ];
  for (const [name, target, path] of allowed) {
    it(`${name}: ${target} reaches ${path}`, async () => {
      seen.length = 0;
      const res = await send('POST', target);
      expect(res.status).toBe(200);
      expect(seen).toEqual([path]);
    });
  }
});
