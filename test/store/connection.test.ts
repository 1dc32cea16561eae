/**
 * src/store/connection.ts: how a database file is opened. The file holds webhook secrets, so a
 * new one is readable by its owner only.
 */
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openConnection } from '../../src/store/connection.js';
import { openSqliteStore } from '../../src/store/index.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const mode = (path: string) => statSync(path).mode & 0o777;

describe('file permissions', () => {
  it('creates a new database, its WAL and its shared-memory file readable by the owner only', async () => {
    // The usual umask (022) would leave a new file world-readable (0644).
    const previous = process.umask(0o022);
    try {
      const path = newDb();
      const store = openSqliteStore({ path });
      const budgets = openSqliteLedger({ path });
      store.write(makeRecord());
      await store.flush();
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        expect(mode(file), `mode of ${file.slice(path.length) || 'the database'}`).toBe(0o600);
      }
      budgets.close();
      await store.close();
    } finally {
      process.umask(previous);
    }
  });

  it("leaves an existing file's mode as it is", () => {
    const path = newDb();
    writeFileSync(path, '');
    chmodSync(path, 0o640);
    openConnection(path).close();
    expect(mode(path)).toBe(0o640);
  });
});
