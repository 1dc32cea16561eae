/**
 * When the store's writer thread dies or cannot start, the store says so (`failed`,
 * `lastError`) and commits on the event loop, as 'commit' does, starting with what the thread
 * held: nothing written is lost. The threads are real; this file only keeps a hand on them.
 */
import { readdirSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { openSqliteStore } from '../../src/store/index.js';
import { journalDir } from '../../src/store/journal.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const threads = vi.hoisted(() => ({ started: [] as Worker[], refuse: false }));

vi.mock('node:worker_threads', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:worker_threads')>();
  class Tracked extends original.Worker {
    constructor(...args: ConstructorParameters<typeof original.Worker>) {
      if (threads.refuse) throw new Error('no threads today');
      super(...args);
      threads.started.push(this);
    }
  }
  return { ...original, Worker: Tracked };
});

const newDb = useTempDb();
const count = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM usage').pluck().get() as number;
  } finally {
    db.close();
  }
};

describe('the writer thread fails', () => {
  it('dies holding a batch: the store reports it, commits the batch and what follows on the event loop', async () => {
    const path = newDb();
    const errors: unknown[] = [];
    const store = openSqliteStore({ path, busyTimeoutMs: 20, onError: (error) => errors.push(error) });
    const thread = threads.started.at(-1)!;
    for (let i = 0; i < 10; i++) store.write(makeRecord({ id: `before-${i}` }));
    await store.flush();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 5; i++) store.write(makeRecord({ id: `held-${i}` }));
    await vi.waitFor(() => expect(store.stats().failed).toBeGreaterThan(0));
    const failed = store.stats().failed;
    await thread.terminate();
    await vi.waitFor(() => expect(errors.map(String).join('\n')).toMatch(/writer thread stopped/));
    // Counted once for the thread, then for the event loop's own attempt at the locked file.
    expect(store.stats().failed).toBeGreaterThan(failed);
    expect(store.stats()).toMatchObject({ pending: 5, written: 10 });
    other.exec('ROLLBACK');
    other.close();
    await store.flush();
    expect(store.stats()).toMatchObject({ pending: 0, written: 15, dropped: 0 });
    // Now as 'commit': committed before the next turn of the event loop.
    store.write(makeRecord({ id: 'after' }));
    await Promise.resolve();
    expect(count(path)).toBe(16);
    await store.close();
    expect(count(path)).toBe(16);
    expect(() => readdirSync(journalDir(path)), 'the journal is removed with nothing left in it').toThrow();
  });

  it('cannot start: the store opens, reports it, and commits on the event loop', async () => {
    const path = newDb();
    const errors: unknown[] = [];
    threads.refuse = true;
    let store: ReturnType<typeof openSqliteStore>;
    try {
      store = openSqliteStore({ path, onError: (error) => errors.push(error) });
    } finally {
      threads.refuse = false;
    }
    expect(store.stats().failed).toBe(1);
    expect(String(errors[0])).toMatch(/writer thread stopped: no threads today/);
    store.write(makeRecord());
    await Promise.resolve();
    expect(count(path)).toBe(1);
    await store.close();
  });
});
