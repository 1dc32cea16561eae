/**
 * No per-call state outlives the call: heapUsed (after full GCs) barely moves between the
 * 10,000th and the 100,000th call through `meter.fetch`. Measured in a child process started
 * with --expose-gc (test/fixtures/faults-memory.mjs, the built package), 50 callers at a time,
 * a quarter of the calls streamed (SSE):
 * - 100,000 calls to an upstream answering from memory inside that process (a fetch that
 *   builds the same Response a server sends), `database: false`: the meter's own state only,
 *   at a rate loopback HTTP could not reach in a test's time;
 * - 10,000 calls over loopback HTTP to a tiny server in this process, with a ':memory:' store
 *   (rows live in SQLite's own memory, outside the JS heap; the pending queue must drain).
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, DIST } from '../fixtures/build.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/faults-memory.mjs');
const MiB = 1024 * 1024;
/** The bound on growth between the checkpoint and the end. */
const MAX_GROWTH = 8 * MiB;

/** The upstream's answers: a small chat completion, and the same streamed (SSE events). */
const JSON_TEXT = JSON.stringify({
  id: 'chatcmpl-mem',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
});
const SSE_EVENTS = [
  ...['Hello', ' there', '.'].map((content) =>
    JSON.stringify({
      id: 'chatcmpl-mem',
      object: 'chat.completion.chunk',
      model: 'gpt-4o-mini',
      choices: [{ index: 0, delta: { content }, finish_reason: null }],
    }),
  ),
  JSON.stringify({
    id: 'chatcmpl-mem',
    object: 'chat.completion.chunk',
    model: 'gpt-4o-mini',
    choices: [],
    usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
  }),
  '[DONE]',
].map((data) => `data: ${data}\n\n`);
const JSON_BODY = Buffer.from(JSON_TEXT);
const SSE_BODY = Buffer.from(SSE_EVENTS.join(''));

let server: Server;
let serverUrl = '';

beforeAll(async () => {
  buildOnce();
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const stream = Buffer.concat(chunks).includes('"stream":true');
      const body = stream ? SSE_BODY : JSON_BODY;
      res.writeHead(200, {
        'content-type': stream ? 'text/event-stream' : 'application/json',
        'content-length': body.length,
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Measure {
  calls: number;
  checkpoint: number;
  atCheckpoint: number;
  atEnd: number;
  growth: number;
  bytes: number;
  bad: number;
  stats: { calls: number; inFlight: number; sinkErrors: number };
  store: { written: number; failed: number; dropped: number; pending: number } | null;
}

function measure(upstream: string, database: string, calls: number, checkpoint: number): Promise<Measure> {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      FIXTURE,
      DIST,
      upstream,
      database,
      String(calls),
      String(checkpoint),
      JSON.stringify({ json: JSON_TEXT, sse: SSE_EVENTS }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve, reject) =>
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`memory fixture exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as Measure);
    }),
  );
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(2)} MiB`;

describe('heap after many calls', () => {
  it('100,000 calls (database: false) and 10,000 over loopback (:memory: store): growth under 8 MiB', async () => {
    const [fromMemory, overHttp] = await Promise.all([
      measure('memory', 'false', 100_000, 10_000),
      measure(serverUrl, ':memory:', 10_000, 1_000),
    ]);
    for (const [name, m] of [
      ['in-process upstream, database: false', fromMemory],
      ['loopback HTTP, :memory: store', overHttp],
    ] as const) {
      console.log(
        `${name}: heapUsed ${mib(m.atCheckpoint)} after ${m.checkpoint} calls, ${mib(m.atEnd)} after ${m.calls}: ` +
          `growth ${mib(m.growth)}`,
      );
    }
    expect(fromMemory).toMatchObject({
      calls: 100_000,
      bad: 0,
      stats: { calls: 100_000, inFlight: 0, sinkErrors: 0 },
    });
    expect(overHttp).toMatchObject({
      calls: 10_000,
      bad: 0,
      stats: { calls: 10_000, inFlight: 0, sinkErrors: 0 },
    });
    expect(overHttp.store).toMatchObject({ written: 10_000, failed: 0, dropped: 0, pending: 0 });
    expect(fromMemory.growth, 'heap growth from call 10,000 to 100,000').toBeLessThan(MAX_GROWTH);
    expect(overHttp.growth, 'heap growth from call 1,000 to 10,000').toBeLessThan(MAX_GROWTH);
  }, 240_000);
});
