/**
 * The write-behind queue both sinks stand on (src/common/write-behind.ts), against a fake
 * database whose commits succeed, fail for a while, or refuse an item for good.
 */
import { describe, expect, it } from 'vitest';
import { type CommitMode, createWriteBehind, retryDelayMs } from '../../src/common/write-behind.js';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A database that takes batches unless told to fail (transiently) or to refuse an item (for good). */
function fakeDatabase() {
  const db = {
    committed: [] as number[][],
    modes: [] as CommitMode[],
    down: false,
    refuse: new Set<number>(),
    commit(batch: readonly number[], mode: CommitMode) {
      db.modes.push(mode);
      if (db.down) throw Object.assign(new Error('locked'), { code: 'BUSY' });
      const refused = batch.find((item) => db.refuse.has(item));
      if (refused !== undefined) throw Object.assign(new Error(`refused ${refused}`), { permanent: true });
      db.committed.push([...batch]);
    },
  };
  return db;
}

function queueOn(
  db: ReturnType<typeof fakeDatabase>,
  options: {
    start?: 'now' | 'microtask' | 'immediate';
    capacity?: number;
    maxBatch?: number;
    maxPerTurn?: number;
  } = {},
) {
  const errors: Array<[string, boolean]> = [];
  const queue = createWriteBehind<number>({
    capacity: options.capacity ?? 100,
    maxBatch: options.maxBatch ?? 10,
    maxPerTurn: options.maxPerTurn,
    start: options.start ?? 'microtask',
    commit: db.commit,
    isPermanent: (error) => (error as { permanent?: boolean }).permanent === true,
    onError: (error, permanent) => errors.push([(error as Error).message, permanent]),
  });
  return { queue, errors };
}

describe('write-behind', () => {
  it.each<[number, number]>([
    [1, 100],
    [2, 200],
    [6, 3_200],
    [7, 5_000],
    [50, 5_000],
  ])('after %i failed commits the next waits %i ms', (failures, delay) => {
    expect(retryDelayMs(failures)).toBe(delay);
  });

  it('microtask: what is pushed in one tick commits together, before the event loop turns', async () => {
    const db = fakeDatabase();
    const { queue } = queueOn(db);
    for (const item of [1, 2, 3]) queue.push(item);
    expect(db.committed, 'not inside push').toEqual([]);
    await Promise.resolve();
    expect(db.committed).toEqual([[1, 2, 3]]);
    expect(db.modes).toEqual(['background']);
    expect(queue.stats()).toEqual({ committed: 3, failed: 0, dropped: 0, invalid: 0, pending: 0 });
  });

  it('now: an item pushed while nothing waits commits inside push', () => {
    const db = fakeDatabase();
    const { queue } = queueOn(db, { start: 'now', maxBatch: 1 });
    queue.push(1);
    expect(db.committed).toEqual([[1]]);
  });

  it('a failed commit keeps its items, in order; pushes only queue while it backs off', async () => {
    const db = fakeDatabase();
    const { queue, errors } = queueOn(db, { start: 'now', maxBatch: 1 });
    db.down = true;
    queue.push(1);
    queue.push(2);
    expect(db.modes, 'the second push did not try the database again').toHaveLength(1);
    expect(queue.stats()).toMatchObject({ failed: 1, pending: 2 });
    expect(errors).toEqual([['locked', false]]);
    db.down = false;
    await sleep(retryDelayMs(1) + 50);
    expect(db.committed).toEqual([[1], [2]]);
    expect(queue.stats()).toMatchObject({ committed: 2, failed: 1, pending: 0 });
  });

  it('a batch refused for good is discarded and counted; what follows commits', async () => {
    const db = fakeDatabase();
    const { queue, errors } = queueOn(db, { start: 'now', maxBatch: 1 });
    db.refuse.add(2);
    for (const item of [1, 2, 3]) queue.push(item);
    expect(db.committed).toEqual([[1], [3]]);
    expect(queue.stats()).toMatchObject({ committed: 2, invalid: 1, failed: 0, pending: 0 });
    expect(errors).toEqual([['refused 2', true]]);
  });

  it('past capacity the oldest items are evicted and counted as dropped', async () => {
    const db = fakeDatabase();
    const { queue } = queueOn(db, { capacity: 3 });
    db.down = true;
    for (const item of [1, 2, 3, 4, 5]) queue.push(item);
    await turn();
    expect(queue.stats()).toMatchObject({ dropped: 2, pending: 3 });
    db.down = false;
    await queue.flush();
    expect(db.committed.flat()).toEqual([3, 4, 5]);
  });

  it('a backlog is committed maxPerTurn items at a time, one turn after another', async () => {
    const db = fakeDatabase();
    const { queue } = queueOn(db, { start: 'immediate', maxBatch: 2, maxPerTurn: 4 });
    for (let i = 0; i < 10; i++) queue.push(i);
    await turn();
    expect(db.committed.flat()).toEqual([0, 1, 2, 3]);
    await turn();
    expect(db.committed.flat()).toHaveLength(8);
    await turn();
    expect(db.committed).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
      [8, 9],
    ]);
  });

  it('flush rejects with the commit error while the database refuses, then commits everything', async () => {
    const db = fakeDatabase();
    const { queue } = queueOn(db);
    db.down = true;
    queue.push(1);
    await expect(queue.flush()).rejects.toThrow('locked');
    expect(queue.stats()).toMatchObject({ pending: 1 });
    db.down = false;
    await queue.flush();
    expect(db.committed).toEqual([[1]]);
    expect(db.modes.at(-1)).toBe('flush');
  });

  it('close makes a last attempt, drops (and counts) what is left, and drops later pushes', async () => {
    const db = fakeDatabase();
    const { queue } = queueOn(db);
    db.down = true;
    queue.push(1);
    queue.push(2);
    const closed = await queue.close();
    expect(closed).toMatchObject({ dropped: 2 });
    expect((closed.error as Error).message).toBe('locked');
    expect(db.modes).toContain('close');
    queue.push(3);
    expect(queue.stats()).toMatchObject({ dropped: 3, pending: 0 });
    db.down = false;
    await turn();
    expect(db.committed).toEqual([]);
  });

  it('a throwing diagnostics hook changes nothing', async () => {
    const db = fakeDatabase();
    const queue = createWriteBehind<number>({
      capacity: 10,
      maxBatch: 10,
      start: 'now',
      commit: db.commit,
      isPermanent: () => true,
      onError: () => {
        throw new Error('hook');
      },
    });
    db.refuse.add(1);
    expect(() => queue.push(1)).not.toThrow();
    queue.push(2);
    expect(queue.stats()).toMatchObject({ invalid: 1, committed: 1 });
  });
});
