/**
 * Request smuggling at the gateway: conflicting or malformed message framing (RFC 9112 §6.3) is
 * refused before anything is forwarded, and the upstream request is always framed by the gateway
 * itself (one Content-Length it computes, never the client's Transfer-Encoding). Raw bytes over
 * loopback; the upstream records exactly what reached it.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';

const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
const upstream = createServer((req, res) => {
  let body = '';
  req.setEncoding('latin1');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => {
    seen.push({ headers: req.headers, body });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});
let gw: RunningProxy;
let meter: ReturnType<typeof createMeter>;

beforeAll(async () => {
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  meter = createMeter({ database: false });
  gw = await startProxy({
    port: 0,
    upstreams: { openai: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
    meter,
  });
});
afterAll(async () => {
  await gw.close();
  await meter.shutdown();
  await new Promise((r) => upstream.close(r));
});

/** Raw bytes; resolves with everything the gateway sent until it closed (bounded wait). */
async function send(bytes: string): Promise<string> {
  const socket = connect(gw.port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  socket.write(bytes);
  for (let i = 0; i < 400 && !closed; i++) await new Promise((r) => setTimeout(r, 5));
  socket.destroy();
  return text;
}

const START = 'POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n';
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

describe('gateway framing: smuggling attempts are refused', () => {
  const cases: [string, string][] = [
    ['two different Content-Lengths', `${START}content-length: 2\r\ncontent-length: 40\r\n\r\n{}`],
    ['a Content-Length list', `${START}content-length: 2, 40\r\n\r\n{}`],
    [
      'Content-Length and Transfer-Encoding',
      `${START}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
    ],
    ['chunked not last', `${START}transfer-encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n`],
    ['a coding without chunked', `${START}transfer-encoding: gzip\r\n\r\n{}`],
    ['a signed Content-Length', `${START}content-length: +2\r\n\r\n{}`],
    ['whitespace before the colon', `${START}content-length : 2\r\n\r\n{}`],
    ['an obsolete line folding', `${START}x-a: 1\r\n  folded\r\ncontent-length: 2\r\n\r\n{}`],
    ['a bad chunk size', `${START}transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`],
  ];
  for (const [name, bytes] of cases) {
    it(`${name}: 400, nothing forwarded`, async () => {
      seen.length = 0;
      const text = await send(
        `${bytes}POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}`,
      );
      expect(statuses(text)[0]).toBe(400);
      expect(seen, 'the upstream saw nothing (nor a smuggled second request)').toEqual([]);
    });
  }

  it('a chunked request is forwarded with the length the gateway computed', async () => {
    seen.length = 0;
    const text = await send(
      `${START}authorization: Bearer sk-x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n` +
        '1\r\n{\r\n1\r\n}\r\n0\r\n\r\n',
    );
    expect(statuses(text)).toEqual([200]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).toBe('{}');
    expect(seen[0]!.headers['content-length']).toBe('2');
    expect(seen[0]!.headers['transfer-encoding']).toBeUndefined();
  });
});
