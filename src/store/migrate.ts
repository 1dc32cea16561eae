/**
 * The migration runner (after Signal Desktop's): numbered DDL files in `migrations/`, in steps
 * of 10; `PRAGMA user_version` holds the number of the last one applied. The runner owns the
 * transaction and the version, so the files hold nothing but DDL.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ConnectionOptions, openConnection, type SqliteDatabase } from './connection.js';
import { MigrationError, SchemaTooNewError } from './errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrateResult {
  /** user_version before. */
  from: number;
  /** user_version after. */
  to: number;
  /** Versions this call applied (empty when another process got there first). */
  applied: number[];
}

/** src/store and dist/store are both two levels below the package root. */
export const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url);

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;
/** Statements that are the runner's job, not a migration's. */
const NOT_DDL =
  /\b(BEGIN\s+(DEFERRED|IMMEDIATE|EXCLUSIVE|TRANSACTION)|BEGIN\s*;|COMMIT|ROLLBACK|END\s+TRANSACTION|SAVEPOINT|RELEASE|PRAGMA|VACUUM|ATTACH|DETACH)\b/i;

export function loadMigrations(dir: URL | string = MIGRATIONS_DIR): Migration[] {
  const path = typeof dir === 'string' ? dir : fileURLToPath(dir);
  const files = readdirSync(path)
    .filter((name) => name.endsWith('.sql'))
    .sort();
  const migrations: Migration[] = [];
  for (const name of files) {
    const match = FILE_NAME.exec(name);
    if (!match) throw new MigrationError(`Migration file name \`${name}\` is not NNNN_name.sql.`);
    const sql = readFileSync(`${path}/${name}`, 'utf8');
    migrations.push({ version: Number(match[1]), name, sql });
  }
  checkMigrations(migrations);
  return migrations;
}

export function checkMigrations(migrations: readonly Migration[]): void {
  let previous = 0;
  for (const migration of migrations) {
    if (migration.version % 10 !== 0 || migration.version <= previous) {
      throw new MigrationError(
        `Migration \`${migration.name}\` has version ${migration.version}; expected a multiple of 10 above ${previous}.`,
      );
    }
    const statement = NOT_DDL.exec(stripComments(migration.sql));
    if (statement) {
      throw new MigrationError(
        `Migration \`${migration.name}\` contains \`${statement[0]}\`; migrations hold only DDL, the runner owns transactions and pragmas.`,
      );
    }
    previous = migration.version;
  }
}

function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

function userVersion(db: SqliteDatabase): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Bring the database up to the last migration, in one BEGIN IMMEDIATE transaction: a second
 * process starting at the same moment waits on the write lock (busy_timeout), then re-reads
 * user_version inside its transaction and finds nothing left to do.
 */
export function migrate(
  db: SqliteDatabase,
  migrations: readonly Migration[] = loadMigrations(),
): MigrateResult {
  checkMigrations(migrations);
  const target = latestVersion(migrations);
  const before = userVersion(db);
  if (before > target) throw new SchemaTooNewError(before, target);
  if (before === target) return { from: before, to: before, applied: [] };

  db.exec('BEGIN IMMEDIATE');
  try {
    const current = userVersion(db);
    if (current > target) throw new SchemaTooNewError(current, target);
    const pending = migrations.filter((migration) => migration.version > current);
    for (const migration of pending) {
      try {
        db.exec(migration.sql);
      } catch (error) {
        throw new MigrationError(`Migration \`${migration.name}\` failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    // user_version cannot take a bound parameter; `target` is a number we computed.
    db.pragma(`user_version = ${target}`);
    db.exec('COMMIT');
    return { from: current, to: target, applied: pending.map((migration) => migration.version) };
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/** For `llm-meter migrate`: open the file, migrate it, close it. */
export function migrateFile(
  path: string,
  options: ConnectionOptions & { migrations?: readonly Migration[] } = {},
): MigrateResult {
  const db = openConnection(path, options);
  try {
    return migrate(db, options.migrations ?? loadMigrations());
  } finally {
    db.close();
  }
}
