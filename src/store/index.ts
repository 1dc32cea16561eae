export { isValidTimeZone, zonedInstant } from '../zones.js';
export {
  InvalidQueryError,
  isInvalidQueryError,
  isMigrationError,
  isSchemaTooNewError,
  MigrationError,
  SchemaTooNewError,
  StoreError,
} from './errors.js';
export { DEFAULT_EVENTS_LIMIT, MAX_EVENTS_LIMIT } from './events.js';
export { loadMigrations, type MigrateResult, migrateFile } from './migrate.js';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite.js';
export * from './types.js';
