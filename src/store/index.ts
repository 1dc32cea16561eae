export type { BudgetLedger } from '../common/budget-ledger.js';
export { isValidTimeZone, zonedInstant } from '../zones.js';
export {
  InvalidQueryError,
  InvalidRecordError,
  isInvalidQueryError,
  isInvalidRecordError,
  isMigrationError,
  isSchemaTooNewError,
  isStoreError,
  MigrationError,
  SchemaTooNewError,
  StoreError,
} from './errors.js';
export { DEFAULT_EVENTS_LIMIT, MAX_EVENTS_LIMIT } from './events.js';
export { loadMigrations, type MigrateResult, migrateFile } from './migrate.js';
export { DURABILITIES, type Durability, openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { openSqliteLedger, type SqliteLedgerOptions } from './sqlite-ledger.js';
export * from './types.js';
