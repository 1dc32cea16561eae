/**
 * The writer thread ('journal' and 'async' durability, src/store/writer*.ts) and the journal
 * (src/store/journal.ts): the caller's event loop turns while the thread waits for a lock; what
 * flush() and stats() promise; a writer killed while its rows were only in its journal loses
 * none of them, and the journal replayed twice counts each once; which segments a store replays;
 * and the thread's copies (the histogram codec, rollups derived in SQL) agree with the event
 * loop's.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError } from '../../src/errors/errors.js';
import { createMeter } from '../../src/index.js';
import type { CallRecord } from '../../src/record.js';
import { encode, newHistogram, registerHistogramFunctions } from '../../src/store/histogram.js';
import { type Durability, openSqliteStore, StoreError } from '../../src/store/index.js';
import { journalDir } from '../../src/store/journal.js';
import { ROLLUP_TABLES } from '../../src/store/rollup.js';
import { rowFromValues, rowValues, toUsageRow, USAGE_COLUMNS } from '../../src/store/row.js';
import { HISTOGRAM_FUNCTIONS_SOURCE } from '../../src/store/writer-worker.js';
import { type BuiltStore, buildStoreForChildProcesses } from '../fixtures/store-build.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeErrorRecord, makeRecord } from '../helpers/records.js';

const WRITER = fileURLToPath(new URL('../fixtures/store-writer.mjs', import.meta.url));
const THREADED: Durability[] = ['journal', 'async'];
const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 2, 10);
const newDb = useTempDb();
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function read<T>(path: string, sql: string): T {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as T;
  } finally {
    db.close();
  }
}

/** Every rollup table agrees with the raw rows: requests, tokens, cost, unpriced calls. */
function rollupsMatchRows(path: string): void {
  const sums =
    'sum(requests), sum(input_tokens), sum(output_tokens), sum(cost_nanos), sum(unpriced_requests)';
  const raw = read<string>(
    path,
    'SELECT json_array(count(*), sum(input_tokens), sum(output_tokens), coalesce(sum(cost_nanos), 0), sum(cost_nanos IS NULL)) FROM usage',
  );
  for (const table of ROLLUP_TABLES) {
    expect(read<string>(path, `SELECT json_array(${sums}) FROM ${table.name}`), table.name).toBe(raw);
  }
}

describe.each(THREADED)('%s durability', (durability) => {
  it("the caller's event loop keeps turning while the writer thread waits out a long lock", async () => {
    const path = newDb();
    // Ten minutes: the thread's first attempt waits all of it; the test ends long before.
    const store = openSqliteStore({ path, durability, busyTimeoutMs: 600_000 });
    await store.flush();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    let turns = 0;
    for (let i = 0; i < 500; i++) {
      store.write(makeRecord({ id: `turn-${i}` }));
      await turn();
      turns++;
    }
    expect(turns).toBe(500);
    expect(store.stats(), 'the thread is still in its first wait for the lock').toMatchObject({
      written: 0,
      failed: 0,
      pending: 500,
    });
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ written: 500, failed: 0, pending: 0 });
    expect(read(path, 'SELECT count(*) FROM usage')).toBe(500);
    await store.close();
  });

  it('flush() resolves once what was written before it is committed; pending counts what the thread has not acknowledged', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    for (let i = 0; i < 50; i++) store.write(makeRecord());
    expect(store.stats()).toMatchObject({ written: 0, pending: 50 });
    await store.flush();
    expect(read(path, 'SELECT count(*) FROM usage'), 'visible to another connection').toBe(50);
    expect(store.stats()).toMatchObject({ written: 50, pending: 0, failed: 0 });
    await store.flush();
    await store.close();
  });

  it('keeps records while the database is locked, counts the failures, rejects flush() meanwhile, and commits them later', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (const id of ['a', 'b', 'c']) store.write(makeRecord({ id }));
    await vi.waitFor(() => expect(store.stats().failed).toBeGreaterThan(0));
    expect(store.stats()).toMatchObject({ pending: 3, written: 0, dropped: 0 });
    expect(store.stats().lastError?.code).toMatch(/^SQLITE_BUSY/);
    store.write(makeRecord({ id: 'd' }));
    await expect(store.flush()).rejects.toBeInstanceOf(StoreError);
    expect(store.stats()).toMatchObject({ pending: 4, written: 0 });
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ pending: 0, written: 4, dropped: 0 });
    expect(read(path, 'SELECT count(*) FROM usage')).toBe(4);
    await store.close();
  });

  it('flush() waits for a lock held for a while (the busy timeout) instead of failing', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability, busyTimeoutMs: 30_000 });
    await store.flush();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    store.write(makeRecord());
    setTimeout(() => {
      other.exec('ROLLBACK');
      other.close();
    }, 200);
    await store.flush();
    expect(store.stats()).toMatchObject({ written: 1, failed: 0, pending: 0 });
    await store.close();
  });

  it("the rollups the writer thread derives in SQL equal the event loop's, byte for byte", async () => {
    const records: CallRecord[] = [];
    for (let i = 0; i < 400; i++) {
      const spec = {
        id: `r-${i}`,
        startMs: T0 + (i % 37) * (HOUR / 3) + i,
        requestModel: ['gpt-4o', 'gpt-4o-mini', 'claude'][i % 3],
        user: i % 5 === 0 ? undefined : `user-${i % 4}`,
        durationMs: 10 + ((i * 7919) % 60_000) / 3,
      };
      if (i % 11 === 0) records.push(makeErrorRecord(spec));
      else {
        records.push(
          makeRecord({
            ...spec,
            ttftMs: i % 6 === 0 ? null : 50 + (i % 300),
            costNanos: i % 9 === 0 ? null : 1_000 * i,
            usage: { inputTokens: i % 50 === 0 ? 9e18 : 100 + i, outputTokens: i },
          }),
        );
      }
    }
    const paths = { commit: newDb(), [durability]: newDb() } as Record<Durability, string>;
    const clamped: number[] = [];
    for (const mode of ['commit', durability] as const) {
      const store = openSqliteStore({ path: paths[mode], durability: mode });
      // Batches of several sizes, so that upserts also meet groups already stored; and repeats.
      for (const [from, to] of [
        [0, 1],
        [1, 40],
        [40, 41],
        [41, 400],
        [100, 160],
      ] as const) {
        for (const record of records.slice(from, to)) store.write(record);
        await store.flush();
      }
      expect(store.stats()).toMatchObject({ written: 460, duplicates: 60, invalid: 0 });
      clamped.push(store.stats().clamped);
      await store.close();
    }
    expect(clamped[1], 'clamped records counted alike').toBe(clamped[0]);
    expect(clamped[0]).toBeGreaterThan(0);
    for (const table of ROLLUP_TABLES) {
      const keys = [table.timeColumn, ...table.dims].join(', ');
      const rows = (path: string) => {
        const db = new Database(path, { readonly: true });
        try {
          return db.prepare(`SELECT * FROM ${table.name} ORDER BY ${keys}`).all() as Array<
            Record<string, unknown>
          >;
        } finally {
          db.close();
        }
      };
      const expected = rows(paths.commit);
      const actual = rows(paths[durability]);
      expect(actual.length, table.name).toBe(expected.length);
      for (const [i, row] of actual.entries()) {
        const { duration_ms_sum: sum, ...exact } = row;
        const { duration_ms_sum: expectedSum, ...expectedExact } = expected[i]!;
        expect(exact, `${table.name} row ${i}`).toEqual(expectedExact);
        // A float sum: SQLite's is compensated, the event loop's is not.
        expect(sum as number).toBeCloseTo(expectedSum as number, 6);
      }
    }
    rollupsMatchRows(paths[durability]);
  });
});

describe('the journal', () => {
  let built: BuiltStore;
  beforeAll(() => {
    built = buildStoreForChildProcesses();
  });
  afterAll(() => built.remove());

  function hold(path: string, count: number): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [
        WRITER,
        built.storeModule,
        built.recordsModule,
        path,
        'hold',
        JSON.stringify({ count, busyTimeoutMs: 600_000 }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes(`written ${count}`)) resolve(child);
      });
      child.on('close', (code) => reject(new Error(`writer exited (${code}): ${stderr}`)));
    });
  }

  it('a writer killed while its rows were only in its journal: the next open commits each once, and a second replay adds nothing', async () => {
    const path = newDb();
    await openSqliteStore({ path }).close();
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    const child = await hold(path, 300);
    const killed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await killed;
    holder.exec('ROLLBACK');
    holder.close();
    expect(read(path, 'SELECT count(*) FROM usage'), 'the killed writer committed nothing').toBe(0);
    const dir = journalDir(path);
    const [segment, ...others] = readdirSync(dir);
    expect(others).toEqual([]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, segment!)).mode & 0o777).toBe(0o600);
    const journaled = readFileSync(join(dir, segment!));
    expect(journaled.toString().trimEnd().split('\n')).toHaveLength(301);

    const next = openSqliteStore({ path });
    await next.flush();
    expect(read(path, 'SELECT count(*) FROM usage')).toBe(300);
    expect(read(path, 'SELECT count(DISTINCT id) FROM usage')).toBe(300);
    rollupsMatchRows(path);
    expect(readdirSync(dir), 'the replayed segment is deleted').toEqual([]);
    expect(next.stats(), "replayed rows are not this store's writes").toMatchObject({
      written: 0,
      pending: 0,
    });

    // A replay that committed and died before it deleted the segment: the segment is back.
    writeFileSync(join(dir, segment!), journaled);
    const again = openSqliteStore({ path });
    await again.flush();
    expect(read(path, 'SELECT count(*) FROM usage')).toBe(300);
    rollupsMatchRows(path);
    expect(readdirSync(dir)).toEqual([]);
    await again.close();
    await next.close();
  });

  it('close() that cannot commit leaves the rows in the journal; the next open commits them', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (const id of ['a', 'b', 'c']) store.write(makeRecord({ id }));
    await expect(store.close()).rejects.toBeInstanceOf(StoreError);
    expect(store.stats()).toMatchObject({ dropped: 3, pending: 0 });
    expect(String(store.stats().lastError?.message)).toMatch(/stay in .*usage-journal for the next open/);
    other.exec('ROLLBACK');
    other.close();
    expect(readdirSync(journalDir(path))).toHaveLength(1);
    const next = openSqliteStore({ path });
    await next.flush();
    expect(read(path, 'SELECT count(*) FROM usage')).toBe(3);
    await next.close();
    expect(
      readdirSync(dirname(path)).filter((name) => name.includes('journal')),
      'an empty journal is removed',
    ).toEqual([]);
  });

  it('replays the segments of dead processes and stale ones, and leaves live ones alone', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    const cases: Array<[string, { pid: number; host: string; ageMs: number }, boolean]> = [
      ['this host, pid dead', { pid: deadPid, host: hostname(), ageMs: 0 }, true],
      ['this host, pid alive, touched just now', { pid: process.pid, host: hostname(), ageMs: 0 }, false],
      [
        'this host, pid alive, untouched for 10 minutes (a reused pid)',
        { pid: process.pid, host: hostname(), ageMs: 600_000 },
        true,
      ],
      ['another host, touched just now', { pid: deadPid, host: `not-${hostname()}`, ageMs: 0 }, false],
      [
        'another host, untouched for 10 minutes',
        { pid: deadPid, host: `not-${hostname()}`, ageMs: 600_000 },
        true,
      ],
    ];
    const path = newDb();
    await openSqliteStore({ path }).close();
    const dir = journalDir(path);
    mkdirSync(dir, { recursive: true });
    // A full row of a real record, so that a replayed line is a row SQLite takes.
    const template = newDb();
    const source = openSqliteStore({ path: template, durability: 'commit' });
    source.write(makeRecord({ id: 'template' }));
    await source.close();
    const values = (id: string) => {
      const db = new Database(template, { readonly: true });
      try {
        const stored = db
          .prepare(`SELECT ${USAGE_COLUMNS.join(', ')} FROM usage`)
          .raw()
          .get() as unknown[];
        return JSON.stringify([id, ...stored.slice(1)]);
      } finally {
        db.close();
      }
    };
    for (const [name, { pid, host, ageMs }] of cases) {
      const file = join(dir, `${pid}-${name.replace(/\W+/g, '-')}.ndjson`);
      writeFileSync(
        file,
        `${JSON.stringify({ llm_meter_journal: 1, pid, host, columns: USAGE_COLUMNS })}\n${values(name)}\n`,
      );
      const t = new Date(Date.now() - ageMs);
      utimesSync(file, t, t);
    }
    const store = openSqliteStore({ path });
    await store.flush();
    const db = new Database(path, { readonly: true });
    const stored = new Set(db.prepare('SELECT id FROM usage').pluck().all());
    db.close();
    for (const [name, , replayed] of cases) expect(stored.has(name), name).toBe(replayed);
    expect(readdirSync(dir)).toHaveLength(cases.filter(([, , replayed]) => !replayed).length);
    await store.close();
  });

  it('survives a torn last line: the rows before it are replayed, the torn one counted out', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability: 'commit' });
    store.write(makeRecord({ id: 'template' }));
    await store.close();
    const db = new Database(path);
    const stored = db
      .prepare(`SELECT ${USAGE_COLUMNS.join(', ')} FROM usage`)
      .raw()
      .get() as unknown[];
    db.exec(
      'DELETE FROM usage; DELETE FROM usage_hourly; DELETE FROM usage_daily; DELETE FROM usage_model_hourly',
    );
    db.close();
    const line = (id: string) => JSON.stringify([id, ...stored.slice(1)]);
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    mkdirSync(journalDir(path), { recursive: true });
    writeFileSync(
      join(journalDir(path), `${deadPid}-torn.ndjson`),
      `${JSON.stringify({ llm_meter_journal: 1, pid: deadPid, host: hostname(), columns: USAGE_COLUMNS })}\n${line('one')}\n${line('two')}\n${line('three').slice(0, 40)}`,
    );
    const next = openSqliteStore({ path });
    await next.flush();
    expect(read(path, "SELECT group_concat(id, ',') FROM (SELECT id FROM usage ORDER BY id)")).toBe(
      'one,two',
    );
    rollupsMatchRows(path);
    await next.close();
  });
});

describe('rows', () => {
  it('have their keys in USAGE_COLUMNS order, whatever the record holds (rowValues relies on it)', () => {
    for (const record of [
      makeRecord(),
      makeErrorRecord({ user: undefined }),
      makeRecord({ usage: null, costNanos: null }),
    ]) {
      expect(Object.keys(toUsageRow(record))).toEqual([...USAGE_COLUMNS]);
      expect(rowValues(toUsageRow(record))).toEqual(USAGE_COLUMNS.map((c) => toUsageRow(record)[c]));
    }
    expect(Object.keys(rowFromValues(USAGE_COLUMNS.map(() => null)))).toEqual([...USAGE_COLUMNS]);
  });
});

describe('the histogram codec of the writer thread', () => {
  it('gives the bytes histogram.ts gives, for values and for merges (property)', () => {
    const main = new Database(':memory:');
    registerHistogramFunctions(main);
    const thread = new Database(':memory:');
    new Function('db', 'Buffer', `${HISTOGRAM_FUNCTIONS_SOURCE}\nregisterHistogramFunctions(db);`)(
      thread,
      Buffer,
    );
    const histogramArb = fc
      .array(
        fc.tuple(
          fc.integer({ min: 0, max: 255 }),
          fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(5e9)),
        ),
        {
          maxLength: 20,
        },
      )
      .map((pairs) => {
        const h = newHistogram();
        for (const [i, n] of pairs) h[i]! += n;
        return encode(h);
      });
    const valuesArb = fc.array(
      fc.oneof(
        fc.double({ min: 0, max: 1e10, noNaN: true }),
        fc.integer({ min: -5, max: 5 }),
        fc.constant(null),
      ),
      { maxLength: 50 },
    );
    fc.assert(
      fc.property(valuesArb, histogramArb, histogramArb, (values, a, b) => {
        const of = 'SELECT llm_meter_hist_of(value) FROM json_each(?)';
        const add = 'SELECT llm_meter_hist_add(?, ?)';
        const json = JSON.stringify(values);
        expect(thread.prepare(of).pluck().get(json)).toEqual(main.prepare(of).pluck().get(json));
        expect(thread.prepare(add).pluck().get(a, b)).toEqual(main.prepare(add).pluck().get(a, b));
        expect(thread.prepare(add).pluck().get(null, b)).toEqual(main.prepare(add).pluck().get(null, b));
      }),
      { numRuns: 200 },
    );
  });
});

describe('the option', () => {
  it('is checked where it enters, naming it', () => {
    expect(() => openSqliteStore({ path: ':memory:', durability: 'sometimes' as Durability })).toThrow(
      InvalidOptionError,
    );
    expect(() =>
      createMeter({ database: newDb(), durability: 'sometimes' as Durability, webhookPollIntervalMs: 0 }),
    ).toThrow(/`durability`/);
  });

  it("reaches the store from createMeter: 'commit' commits before the next turn", async () => {
    const path = newDb();
    const meter = createMeter({ database: path, durability: 'commit', webhookPollIntervalMs: 0 });
    meter.store!.write(makeRecord());
    await Promise.resolve();
    expect(read(path, 'SELECT count(*) FROM usage')).toBe(1);
    await meter.shutdown();
  });
});
