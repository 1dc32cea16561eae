/**
 * Every sink failing, under 10,000 calls through `meter.fetch` in a real host process
 * (test/fixtures/faults-sinks.mjs, the built package), to an upstream in this process:
 * - the OTLP collector is down (a closed port) and hanging (accepts, never answers), behind
 *   BatchSpanProcessors, from the first call until the recovery;
 * - the budget webhook receiver hangs (accepts, never answers) until the recovery;
 * - the store's disk refuses writes (the host's file size limit lowered with prlimit: EFBIG,
 *   as on a full disk) for calls 1,000-3,999;
 * - another connection holds the write lock (BEGIN EXCLUSIVE) for calls 4,000-6,999;
 * - then everything comes back, for calls 7,000-9,999.
 * Asserted: every caller got exactly the upstream's status and bytes; what could not be
 * written was counted (store failed/pending, budget failed/pending, OTel's dropped spans and
 * export errors), not silently dropped; a locked database did not make each call wait for it;
 * and after the recovery nothing that was completed is lost: every record id is in the
 * database, the budget counts every call and every dollar, every threshold alert is delivered,
 * and the collectors receive the spans of every call made after the recovery.
 */
import { type ChildProcess, execFileSync, fork, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, DIST } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/faults-sinks.mjs');
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const newDb = useTempDb();

type Phase = 'healthy' | 'diskFull' | 'locked' | 'recovered';
/** [first call, number of calls] */
const PHASES: Record<Phase, [number, number]> = {
  healthy: [0, 1_000],
  diskFull: [1_000, 3_000],
  locked: [4_000, 3_000],
  recovered: [7_000, 3_000],
};
const CALLS = 10_000;
/** Each call: 10 input tokens × $1/M + 5 output tokens × $2/M = 20,000 nano-dollars. */
const COST_NANOS = 20_000;
const LIMIT_USD = (CALLS * COST_NANOS) / 1e9;
/** Crossed in every phase (500, 2,500, 4,500, 6,500, 8,500 and 10,000 calls). */
const THRESHOLDS = [0.05, 0.25, 0.45, 0.65, 0.85, 1];

const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
const JSON_BODY = JSON.stringify({
  id: 'chatcmpl-{i}',
  object: 'chat.completion',
  created: 1_741_600_000,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Reply {i}.' }, finish_reason: 'stop' }],
  usage,
});
const chunk = (fields: object) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-{i}', object: 'chat.completion.chunk', created: 1_741_600_000, model: 'gpt-4o-mini-2024-07-18', ...fields })}\n\n`;
const SSE_PIECES = [
  chunk({
    choices: [{ index: 0, delta: { role: 'assistant', content: 'Reply ' }, finish_reason: null }],
    usage: null,
  }),
  chunk({ choices: [{ index: 0, delta: { content: '{i}.' }, finish_reason: null }], usage: null }),
  chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null }) +
    chunk({ choices: [], usage }),
  'data: [DONE]\n\n',
];

/** A server whose answers the test switches: `hang` holds requests open, `ok` answers 200. */
function switchable(onBody: (body: Buffer, req: IncomingMessage) => void) {
  let mode: 'hang' | 'ok' = 'hang';
  const held = new Set<Socket>();
  let hung = 0;
  const server = createServer((req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'hang') {
        hung++;
        held.add(req.socket);
        return;
      }
      onBody(Buffer.concat(chunks), req);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return {
    server,
    hung: () => hung,
    /** The receiver comes back: what it held is dropped (as by a restart), new requests succeed. */
    recover() {
      mode = 'ok';
      for (const socket of held) socket.destroy();
      held.clear();
    },
  };
}

async function listen(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The response ids (one per call) in an OTLP/HTTP JSON export. */
function responseIds(body: Buffer): string[] {
  const ids: string[] = [];
  const doc = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: {
      scopeSpans?: { spans?: { attributes?: { key: string; value: { stringValue?: string } }[] }[] }[];
    }[];
  };
  for (const rs of doc.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const span of ss.spans ?? [])
        for (const a of span.attributes ?? [])
          if (a.key === 'gen_ai.response.id' && a.value.stringValue) ids.push(a.value.stringValue);
  return ids;
}

interface State {
  meter: { calls: number; inFlight: number; sinkErrors: number };
  store: {
    written: number;
    failed: number;
    dropped: number;
    pending: number;
    lastError: { code: string } | null;
  };
  budgets: { settled: number; failed: number; pending: number; dropped: number; invalid: number };
  alerts: { threshold: number; state: string; attempts: number }[];
  otel: { droppedSpans: number; exportErrors: number };
  logged: Record<string, number>;
  records: number;
  budgetsFlush?: string | null;
  recordIds?: string[];
}

interface CallsAnswer {
  mismatched: number;
  mismatches: unknown[];
  threw: unknown[];
  maxLoopDelayMs: number;
}

let upstream: Server;
let child: ChildProcess | null = null;
const servers: Server[] = [];

beforeAll(async () => {
  buildOnce();
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      const i = String(req.headers['x-call']);
      const stream = Number(i) % 5 === 0;
      if (!stream) {
        const body = JSON_BODY.replaceAll('{i}', i);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const piece of SSE_PIECES) {
        res.write(piece.replaceAll('{i}', i));
        await new Promise((resolve) => setImmediate(resolve));
      }
      res.end();
    });
  });
  servers.push(upstream);
});
afterAll(async () => {
  child?.kill('SIGKILL');
  for (const server of servers) if (server.listening) await close(server);
});

describe('sinks failing under 10,000 calls', () => {
  it.skipIf(!hasPrlimit)(
    'callers see no change; failures are counted; after recovery nothing completed is lost',
    async () => {
      const upstreamUrl = await listen(upstream);
      const db = newDb();

      // Collectors: one down (a port nobody listens on, until the recovery), one hanging.
      const spansAt = { down: new Set<string>(), hanging: new Set<string>() };
      const downReceiver = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          for (const id of responseIds(Buffer.concat(chunks))) spansAt.down.add(id);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      servers.push(downReceiver);
      const downPort = (await listen(downReceiver)).split(':').at(-1)!;
      await close(downReceiver);
      const hanging = switchable((body) => {
        for (const id of responseIds(body)) spansAt.hanging.add(id);
      });
      servers.push(hanging.server);
      const hangingUrl = await listen(hanging.server);
      const deliveries: number[] = [];
      const webhook = switchable((body) =>
        deliveries.push((JSON.parse(body.toString()) as { threshold: number }).threshold),
      );
      servers.push(webhook.server);
      const webhookUrl = await listen(webhook.server);

      const config = {
        dist: DIST,
        db,
        upstream: upstreamUrl,
        otlp: [`http://127.0.0.1:${downPort}/v1/traces`, `${hangingUrl}/v1/traces`],
        webhook: `${webhookUrl}/hook`,
        limitUsd: LIMIT_USD,
        thresholds: THRESHOLDS,
        json: JSON_BODY,
        sse: SSE_PIECES.join(''),
      };
      const host = fork(FIXTURE, [JSON.stringify(config)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child = host;
      const answers: ((value: unknown) => void)[] = [];
      host.on('message', (message) => answers.shift()?.(message));
      const ready = new Promise((resolve) => answers.push(resolve));
      const ask = <T>(command: object): Promise<T> =>
        new Promise<T>((resolve) => {
          answers.push(resolve as (value: unknown) => void);
          host.send(command);
        });
      await ready;
      const run = async (name: Phase) => {
        const [from, count] = PHASES[name];
        const answer = await ask<CallsAnswer>({ cmd: 'calls', from, count });
        const state = await ask<State>({ cmd: 'state' });
        console.log(
          `${name}: calls ${from}-${from + count - 1}, ${answer.mismatched} changed responses, ` +
            `max event-loop delay ${Math.round(answer.maxLoopDelayMs)} ms; store ${JSON.stringify({ ...state.store, lastError: state.store.lastError?.code })}; ` +
            `budgets ${JSON.stringify(state.budgets)}; otel ${JSON.stringify(state.otel)}; sinkErrors ${state.meter.sinkErrors}`,
        );
        expect(answer.threw, `${name}: nothing thrown into a caller`).toEqual([]);
        expect(answer.mismatches, `${name}: every caller got the upstream's status and bytes`).toEqual([]);
        return state;
      };
      // The store's writer thread acknowledges a batch a moment after the calls that made it, and
      // learns of a lock once its wait for it ends: ask again (for at most 20 s) until it has.
      const settled = async (first: State, done: (state: State) => boolean) => {
        let state = first;
        for (let i = 0; i < 200 && !done(state); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          state = await ask<State>({ cmd: 'state' });
        }
        return state;
      };
      const fileSize = (limit: string) =>
        execFileSync('prlimit', ['--pid', String(host.pid), `--fsize=${limit}:unlimited`]);

      // Healthy store; collectors and webhook already failing.
      const healthy = await settled(await run('healthy'), (state) => state.store.pending === 0);
      expect(healthy.store).toMatchObject({ written: 1_000, failed: 0, pending: 0 });
      expect(healthy.budgets).toMatchObject({ settled: 1_000, failed: 0, pending: 0 });

      // The disk refuses every write.
      fileSize('1');
      const full = await run('diskFull');
      expect(full.store.failed, 'failed commits are counted').toBeGreaterThan(0);
      expect(full.store.pending, 'what could not be written is kept, and counted').toBeGreaterThan(0);
      expect(full.store.written + full.store.pending, 'and nothing is dropped').toBe(4_000);
      expect(full.budgets.failed).toBeGreaterThan(0);
      expect(full.budgets.settled + full.budgets.pending, 'every spend committed or kept').toBe(4_000);

      // Another connection takes the write lock; then the disk is back (the lock stays).
      const holder = new Database(db);
      holder.exec('BEGIN EXCLUSIVE');
      fileSize('unlimited');
      let locked: State;
      try {
        locked = await settled(await run('locked'), (state) =>
          /^SQLITE_BUSY/.test(state.store.lastError?.code ?? ''),
        );
      } finally {
        holder.exec('COMMIT');
        holder.close();
      }
      expect(locked.store.lastError?.code).toMatch(/^SQLITE_BUSY/);
      expect(locked.store.written + locked.store.pending).toBe(7_000);
      expect(locked.budgets.settled + locked.budgets.pending).toBe(7_000);
      // Each SQLITE_BUSY is one wait for the lock on the host's event loop: a few timed retries,
      // not one per finished call (3,000 of them).
      const waits = Object.entries(locked.logged)
        .filter(([key]) => key.includes('SQLITE_BUSY'))
        .reduce((n, [, count]) => n + count, 0);
      expect(waits, `waits for the lock: ${JSON.stringify(locked.logged)}`).toBeLessThan(100);

      // Everything comes back.
      await listen(downReceiver, Number(downPort));
      hanging.recover();
      webhook.recover();
      const flushed = await ask<State>({ cmd: 'flush' });
      expect(flushed.budgetsFlush, 'kept spend committed').toBeNull();
      expect(flushed.store).toMatchObject({ written: 7_000, pending: 0, dropped: 0 });
      expect(flushed.budgets).toMatchObject({ settled: 7_000, pending: 0, dropped: 0, invalid: 0 });
      const recovered = await settled(await run('recovered'), (state) => state.store.pending === 0);
      expect(recovered.store).toMatchObject({ written: CALLS, pending: 0, dropped: 0 });

      // Alerts: each threshold once, every one delivered once the receiver answers.
      let final = await ask<State>({ cmd: 'flush' });
      for (let i = 0; i < 100 && final.alerts.some((a) => a.state !== 'delivered'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        final = await ask<State>({ cmd: 'state' });
      }
      const done = await ask<State & { error?: string }>({ cmd: 'shutdown' });
      expect(done.error).toBeUndefined();
      await new Promise((resolve) => host.once('exit', resolve));
      child = null;
      console.log(
        `after recovery: ${done.records} records; budgets ${JSON.stringify(done.budgets)}; alerts ${JSON.stringify(done.alerts)}; ` +
          `OTel ${JSON.stringify(done.otel)}; collectors received ${spansAt.down.size} and ${spansAt.hanging.size} call spans; ` +
          `${hanging.hung()} exports and ${webhook.hung()} deliveries were left hanging; logged ${JSON.stringify(done.logged)}`,
      );

      expect(done.meter).toMatchObject({ calls: CALLS, inFlight: 0 });
      expect(done.store).toMatchObject({ written: CALLS, pending: 0, dropped: 0 });
      const reader = new Database(db, { readonly: true });
      const storedIds = new Set(reader.prepare('SELECT id FROM usage').pluck().all() as string[]);
      const calls = new Set(
        reader.prepare("SELECT json_extract(tags, '$.call') FROM usage").pluck().all() as string[],
      );
      const spend = reader
        .prepare(
          'SELECT spent_nanos AS spent, requests FROM budget_spend WHERE budget_id = (SELECT id FROM budgets)',
        )
        .get() as { spent: number; requests: number };
      reader.close();
      expect(done.recordIds).toHaveLength(CALLS);
      const missing = done.recordIds!.filter((id) => !storedIds.has(id));
      expect(missing, `${missing.length} record ids missing from the database`).toEqual([]);
      expect(calls.size, 'one row per call').toBe(CALLS);
      expect(spend, 'the budget counts every call and every dollar').toEqual({
        spent: CALLS * COST_NANOS,
        requests: CALLS,
      });
      expect(done.budgets).toMatchObject({ settled: CALLS, pending: 0, dropped: 0 });
      expect(done.alerts.map((a) => [a.threshold, a.state]).sort(), 'each threshold once, delivered').toEqual(
        THRESHOLDS.map((t) => [t, 'delivered']).sort(),
      );
      expect([...new Set(deliveries)].sort(), 'the receiver got every threshold').toEqual(
        [...THRESHOLDS].sort(),
      );

      // Spans: what could not be exported is counted by the OpenTelemetry SDK; after the recovery
      // both collectors get the span of every call.
      expect(
        done.otel.droppedSpans + done.otel.exportErrors,
        'span export failures are counted',
      ).toBeGreaterThan(0);
      expect(hanging.hung(), 'exports hung on the hanging collector').toBeGreaterThan(0);
      expect(webhook.hung(), 'deliveries hung on the hanging receiver').toBeGreaterThan(0);
      const [from, count] = PHASES.recovered;
      for (const [name, got] of Object.entries(spansAt)) {
        const lost = Array.from({ length: count }, (_, k) => `chatcmpl-${from + k}`).filter(
          (id) => !got.has(id),
        );
        expect(lost, `${name} collector: spans of post-recovery calls missing`).toEqual([]);
      }
    },
    180_000,
  );
});
