import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DURABILITIES, openSqliteStore, StoreError } from '../../src/store/index.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const HOUR = 3_600_000;
const _DAY = 24 * HOUR;
const _T0 = Date.UTC(2025, 2, 10, 0, 0, 0);
const newDb = useTempDb();
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function count(path: string, sql = 'SELECT count(*) FROM usage'): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
}

describe.each(DURABILITIES)('writing (%s)', (durability) => {
  it('drops the oldest records beyond maxPending and counts them', async () => {
    const path = newDb();
    const store = openSqliteStore({ durability, path, busyTimeoutMs: 5, maxPending: 5 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 8; i++) store.write(makeRecord({ id: `o-${i}` }));
    await turn();
    expect(store.stats()).toMatchObject({ dropped: 3, pending: 5 });
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    const ids = (await store.events({})).events.map((e) => e.id).sort();
    expect(ids).toEqual(['o-3', 'o-4', 'o-5', 'o-6', 'o-7']);
    await store.close();
  });

  it("never checkpoints in the writer's commits (no fsync on the caller's event loop)", async () => {
    const path = newDb();
    const store = openSqliteStore({ durability, path, checkpointIntervalMs: 600_000 });
    const before = statSync(path).size;
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 300; i++) store.write(makeRecord());
      await store.flush();
    }
    expect(statSync(`${path}-wal`).size, 'past the 1000-page autocheckpoint').toBeGreaterThan(1000 * 4096);
    expect(statSync(path).size, 'commits only appended to the WAL').toBe(before);
    await store.close();
    expect(count(path)).toBe(6000);
  });

  it('checkpoints the WAL from a worker thread', async () => {
    const path = newDb();
    const store = openSqliteStore({ durability, path, checkpointIntervalMs: 10 });
    const before = statSync(path).size;
    for (let i = 0; i < 2000; i++) store.write(makeRecord());
    await store.flush();
    for (let i = 0; i < 500 && statSync(path).size === before; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(statSync(path).size, 'the writer thread copied pages into the file').toBeGreaterThan(before);
    await store.close();
  });

  it('close() commits what is pending', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability });
    for (let i = 0; i < 100; i++) store.write(makeRecord());
    await store.close();
    expect(count(path)).toBe(100);
  });
});

describe("writing on the caller's event loop ('commit'; the writer thread's own: test/store/writer.test.ts)", () => {
  it('commits a record before the next turn of the event loop, without flush', async () => {
    const path = newDb();
    const store = openSqliteStore({ path, durability: 'commit' });
    store.write(makeRecord());
    store.write(makeRecord());
    await Promise.resolve();
    expect(count(path), 'rows visible to another connection').toBe(2);
    await store.close();
  });

  it('keeps records while the database is locked, counts the failure, and commits them later', async () => {
    const path = newDb();
    const store = openSqliteStore({ durability: 'commit', path, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (const id of ['a', 'b', 'c']) store.write(makeRecord({ id }));
    await turn();
    expect(store.stats()).toMatchObject({ failed: 1, pending: 3, written: 0 });
    expect(store.stats().lastError?.code).toMatch(/^SQLITE_BUSY/);
    store.write(makeRecord({ id: 'd' }));
    await turn();
    expect(store.stats().failed, 'no new attempt before the backoff').toBe(1);
    await expect(store.flush()).rejects.toBeInstanceOf(StoreError);
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ failed: 2, pending: 0, written: 4 });
    expect(count(path)).toBe(4);
    await store.close();
  });

  it('never waits the full busy timeout on the event loop: commits wait briefly and retry', async () => {
    const path = newDb();
    // Ten minutes: a commit or a flush during the outage that waited it out would hang the test.
    const store = openSqliteStore({ durability: 'commit', path, busyTimeoutMs: 600_000 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    store.write(makeRecord({ id: 'locked-1' }));
    await turn();
    expect(store.stats()).toMatchObject({ failed: 1, pending: 1, written: 0 });
    // The outage is known: flush probes briefly instead of waiting the full timeout.
    await expect(store.flush()).rejects.toBeInstanceOf(StoreError);
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ pending: 0, written: 1 });
    await store.close();
  });

  it("':memory:' commits on the event loop whatever the durability asked for", async () => {
    const store = openSqliteStore({ path: ':memory:', durability: 'journal' });
    store.write(makeRecord());
    await Promise.resolve();
    expect(store.stats()).toMatchObject({ written: 1, pending: 0 });
    await store.close();
  });
});
