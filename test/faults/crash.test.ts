/**
 * Crash safety of a real host process (test/fixtures/faults-caller.mjs, running the built
 * package) making metered calls to the simulator in this process, into a real SQLite file:
 * - SIGKILL mid-load: every call the host had finished reading is in the database (once the next
 *   store has opened it: with the default durability, 'journal', the last calls may be only in
 *   the dead host's journal, which that open replays);
 * - SIGTERM: the host's handler awaits `meter.shutdown()`, which lets the calls in flight finish,
 *   and then every call it ever started is in the database: nothing lost at all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/index.js';
import { buildOnce, DIST } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { useSimulator } from '../helpers/simulator.js';

const CALLER = join(process.cwd(), 'test/fixtures/faults-caller.mjs');
const newDb = useTempDb();
const env = useSimulator();

beforeAll(buildOnce);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
}

/** Starts the host; `onLine` sees each complete stdout line as it arrives. */
function host(path: string, onLine: (line: string, child: ChildProcess) => void): Promise<Run> {
  const child = spawn(process.execPath, [CALLER, DIST, env.sim.url, path, '24'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      onLine(line, child);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, lines, stderr })),
  );
}

function idsIn(lines: string[], verb: 'start' | 'done'): string[] {
  return lines.filter((l) => l.startsWith(`${verb} `)).map((l) => l.slice(verb.length + 1));
}

function stored(path: string): { ids: Set<string>; integrity: unknown; rolledUp: unknown } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      ids: new Set(db.prepare("SELECT json_extract(tags, '$.call') FROM usage").pluck().all() as string[]),
      integrity: db.pragma('integrity_check', { simple: true }),
      rolledUp: db
        .prepare('SELECT (SELECT sum(requests) FROM usage_hourly) - (SELECT count(*) FROM usage)')
        .pluck()
        .get(),
    };
  } finally {
    db.close();
  }
}

describe('a host process under load', () => {
  it('SIGKILL: every call whose caller had its full response is in the database', async () => {
    const path = newDb();
    let done = 0;
    const run = await host(path, (line, child) => {
      if (line.startsWith('done ') && ++done === 600) child.kill('SIGKILL');
    });
    expect(run.signal, run.stderr).toBe('SIGKILL');
    const finished = idsIn(run.lines, 'done');
    const started = idsIn(run.lines, 'start');
    const committed = stored(path).ids.size;
    const next = openSqliteStore({ path });
    await next.close();
    const { ids, integrity, rolledUp } = stored(path);
    const missing = finished.filter((id) => !ids.has(id));
    console.log(
      `SIGKILL: ${started.length} calls started, ${finished.length} finished, ${committed} committed by the host, ${ids.size} in the database after the next open, ${missing.length} missing`,
    );
    expect(finished.length).toBeGreaterThanOrEqual(600);
    expect(started.length, 'calls were in flight at the kill').toBeGreaterThan(finished.length);
    expect(missing, `${missing.length} of ${finished.length} finished calls missing`).toEqual([]);
    expect(integrity).toBe('ok');
    expect(rolledUp, 'rollups committed with their rows').toBe(0);
  }, 60_000);

  it('SIGTERM: shutdown lets the calls in flight finish; every call started is in the database', async () => {
    const path = newDb();
    let done = 0;
    const run = await host(path, (line, child) => {
      if (line.startsWith('done ') && ++done === 300) child.kill('SIGTERM');
    });
    expect(run.code, run.stderr).toBe(0);
    const started = idsIn(run.lines, 'start');
    const finished = idsIn(run.lines, 'done');
    const shutdown = run.lines.find((l) => l.startsWith('shutdown '));
    expect(shutdown, 'the handler ran to the end').toBeDefined();
    const stats = JSON.parse(shutdown!.slice('shutdown '.length)) as {
      calls: number;
      inFlight: number;
      sinkErrors: number;
      store: { written: number; failed: number; dropped: number; pending: number };
    };
    const { ids, integrity } = stored(path);
    console.log(
      `SIGTERM: ${started.length} calls started, ${finished.length} finished, ${ids.size} in the database; stats ${shutdown}`,
    );
    expect(started.length, 'calls were in flight at the signal').toBeGreaterThan(300);
    expect(finished.sort(), 'every call started finished').toEqual([...started].sort());
    expect([...ids].sort(), 'every call started is stored, once').toEqual([...started].sort());
    expect(stats).toMatchObject({ calls: started.length, inFlight: 0, sinkErrors: 0 });
    expect(stats.store).toMatchObject({ written: started.length, failed: 0, dropped: 0, pending: 0 });
    expect(integrity).toBe('ok');
  }, 60_000);
});
