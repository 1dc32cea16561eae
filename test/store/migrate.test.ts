import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openConnection } from '../../src/store/connection.js';
import { isMigrationError, isSchemaTooNewError, SchemaTooNewError } from '../../src/store/errors.js';
import {
  latestVersion,
  loadMigrations,
  type Migration,
  migrate,
  migrateFile,
} from '../../src/store/migrate.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { DIMENSIONS } from '../../src/store/types.js';
import { useTempDb, useTempDir } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const migrations = loadMigrations();
const latest = latestVersion(migrations);
const newDb = useTempDb();
const newDir = useTempDir();

function schema(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    return {
      version: db.pragma('user_version', { simple: true }) as number,
      tables: db
        .prepare(
          "SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .all() as Array<{ name: string; strict: number }>,
      indexes: (
        db
          .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name",
          )
          .all() as Array<{
          name: string;
        }>
      ).map((row) => row.name),
      journal: db.pragma('journal_mode', { simple: true }),
    };
  } finally {
    db.close();
  }
}

function migrationsDir(files: Record<string, string>): string {
  const dir = join(newDir(), 'migrations');
  mkdirSync(dir);
  for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
  return dir;
}

describe('migrations', () => {
  it('are numbered in steps of 10 and hold only DDL', () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => (i + 1) * 10));
    expect(migrations.length).toBeGreaterThanOrEqual(3);
  });

  it('build the schema from zero: STRICT tables, named indexes for every report filter, WAL', () => {
    const path = newDb();
    expect(migrateFile(path)).toEqual({ from: 0, to: latest, applied: migrations.map((m) => m.version) });
    const s = schema(path);
    expect(s.version).toBe(latest);
    expect(s.journal).toBe('wal');
    expect(s.tables, 'every table STRICT').toEqual(s.tables.map((table) => ({ ...table, strict: 1 })));
    expect(s.tables.map((table) => table.name)).toEqual(
      expect.arrayContaining(['store_meta', 'usage', 'usage_daily', 'usage_hourly', 'usage_model_hourly']),
    );
    for (const column of ['id', 'time', ...DIMENSIONS]) {
      expect(s.indexes, column).toContain(`usage_by_${column}`);
    }
    expect(migrateFile(path), 'a second run has nothing to do').toEqual({
      from: latest,
      to: latest,
      applied: [],
    });
  });

  it.each(migrations.slice(0, -1).map((m, i) => [m.version, i + 1] as const))(
    'upgrade a database at version %i, keeping its rows',
    async (version, applied) => {
      const path = newDb();
      const db = openConnection(path);
      expect(migrate(db, migrations.slice(0, applied)).to).toBe(version);
      db.prepare(
        "INSERT INTO usage (id, time_ms, end_ms, provider, operation, model, tags, stream, tool_count, outcome, finish_reasons, tool_calls, chunks, duration_ms) VALUES ('old-row', 0, 1, 'openai', 'chat', 'gpt-4o', '{}', 0, 0, 'ok', '[]', 0, 0, 1)",
      ).run();
      db.close();

      const store = openSqliteStore({ path });
      store.write(makeRecord({ id: 'new-row' }));
      await store.flush();
      expect((await store.events({})).events.map((e) => e.id)).toEqual(['new-row', 'old-row']);
      await store.close();
      expect(schema(path).version).toBe(latest);
    },
  );

  it('refuse a database newer than the code, with a clear error, and leave it untouched', () => {
    const path = newDb();
    migrateFile(path);
    const db = new Database(path);
    db.pragma(`user_version = ${latest + 10}`);
    db.close();
    let error: unknown;
    try {
      openSqliteStore({ path });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SchemaTooNewError);
    expect(isSchemaTooNewError(error)).toBe(true);
    expect((error as Error).message).toBe(
      `database schema version ${latest + 10} is newer than this llm-meter (${latest}); upgrade llm-meter`,
    );
    expect(schema(path).version).toBe(latest + 10);
  });

  it('roll back every migration of the run when one fails', () => {
    const broken: Migration[] = [
      ...migrations,
      { version: latest + 10, name: 'broken', sql: 'CREATE TABLE usage (x)' },
    ];
    const path = newDb();
    const db = openConnection(path);
    expect(() => migrate(db, broken)).toThrow(/broken/);
    expect(db.inTransaction).toBe(false);
    db.close();
    expect(schema(path)).toMatchObject({ version: 0, tables: [] });
  });

  it.each<[string, Record<string, string>, RegExp]>([
    [
      'not a multiple of 10',
      { '0010_a.sql': 'CREATE TABLE a (x) STRICT;', '0015_b.sql': 'CREATE TABLE b (x)' },
      /0015_b/,
    ],
    ['a pragma', { '0010_a.sql': 'PRAGMA user_version = 5;' }, /PRAGMA/],
    [
      'its own transaction',
      { '0010_a.sql': 'BEGIN IMMEDIATE; CREATE TABLE a (x); COMMIT;' },
      /BEGIN IMMEDIATE/,
    ],
    ['a misnamed file', { '10_a.sql': 'CREATE TABLE a (x)' }, /10_a\.sql/],
  ])('refuse a migration with %s', (_name, files, message) => {
    let error: unknown;
    try {
      loadMigrations(migrationsDir(files));
    } catch (e) {
      error = e;
    }
    expect(isMigrationError(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it('ignore PRAGMA in a comment', () => {
    const dir = migrationsDir({
      '0010_a.sql': '-- no PRAGMA here, the runner owns them\nCREATE TABLE a (x INTEGER) STRICT;',
    });
    expect(loadMigrations(dir)).toHaveLength(1);
  });
});
