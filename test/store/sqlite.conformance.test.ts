/**
 * The store and budget-ledger conformance suites (test/store/conformance/) on SQLite: a file,
 * which other handles can open as other processes would, and a private in-memory database.
 */
import { DURABILITIES, openSqliteStore } from '../../src/store/index.js';
import { openSqliteLedger } from '../../src/store/sqlite-ledger.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { describeBudgetLedger } from './conformance/budget-ledger.js';
import { describeUsageStore } from './conformance/usage-store.js';

const newDb = useTempDb();

// A file store in each durability: the journal and the writer thread keep every promise the
// on-loop commit keeps.
for (const durability of DURABILITIES) {
  describeUsageStore(`SQLite file (${durability})`, async (options) => {
    const path = newDb();
    const store = openSqliteStore({ path, durability, ...options });
    return { store, another: async () => openSqliteStore({ path }), close: () => store.close() };
  });
}

describeUsageStore(
  'SQLite :memory:',
  async (options) => {
    const store = openSqliteStore({ path: ':memory:', ...options });
    return { store, another: null, close: () => store.close() };
  },
  { sharedDatabase: false },
);

describeBudgetLedger('SQLite file', async () => {
  const path = newDb();
  const ledger = openSqliteLedger({ path });
  return { ledger, another: async () => openSqliteLedger({ path }), close: async () => ledger.close() };
});

describeBudgetLedger('SQLite :memory:', async () => {
  const ledger = openSqliteLedger({ path: ':memory:' });
  return { ledger, another: null, close: async () => ledger.close() };
});
