/**
 * The store and budget-ledger conformance suites (test/store/conformance/) on SQLite: a file,
 * which other handles can open as other processes would, and a private in-memory database.
 */
import { openSqliteStore } from '../../src/store/sqlite.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { describeUsageStore } from './conformance/usage-store.js';

const newDb = useTempDb();

describeUsageStore('SQLite file', async (options) => {
  const path = newDb();
  const store = openSqliteStore({ path, ...options });
  return { store, another: async () => openSqliteStore({ path }), close: () => store.close() };
});

describeUsageStore('SQLite :memory:', async (options) => {
  const store = openSqliteStore({ path: ':memory:', ...options });
  return { store, another: null, close: () => store.close() };
});
