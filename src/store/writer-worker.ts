/**
 * The writer thread: one worker per file store, with its own connection, that
 *
 * - commits the batches of rows the event loop hands it ('journal' and 'async' durability), one
 *   transaction per batch, waiting for another process's lock as long as the busy timeout says
 *   (it blocks no caller), and retrying with backoff while the database refuses;
 * - replays journal segments left by processes that died (journal.ts), at start and then every
 *   JOURNAL_SCAN_MS, whatever this store's own durability;
 * - checkpoints the WAL on an interval (the only fsyncs), which no commit on the event loop ever
 *   does (the main connection turns automatic checkpoints off while this thread runs).
 *
 * One thread rather than a writer and a checkpointer. Measured ('journal', 100k rows written
 * 100 per tick, 3 rounds on the shared 2-core VM): the same rows/s with checkpoints every second
 * as with none (58-62k against 57-68k), the commit acknowledged later at p99 (8-12 ms after
 * write() against 6-7 ms: a PASSIVE checkpoint's fsync runs between two commits), and nothing
 * on the caller's event loop either way; a second thread would cost ~8 MiB of RSS per store.
 *
 * Its code is plain JS evaluated with `eval: true` (a .ts file could not run there when tests run
 * from src/). It holds no SQL of its own: the insert and the rollup statements come from row.ts
 * and rollup.ts through workerData. What it cannot receive as text is the histogram codec behind
 * the SQL functions the rollups call: HISTOGRAM_FUNCTIONS_SOURCE is a copy of histogram.ts, and
 * test/store/writer.test.ts checks that both give the same bytes.
 *
 * Rows travel as the journal's lines (a JSON array of the row's values in USAGE_COLUMNS order),
 * one string per batch: the event loop already built each line, and cloning one string costs a
 * copy where an array of 63 values per row costs a walk.
 */

import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { retryDelayMs } from '../common/write-behind.js';
import { BRIEF_BUSY_TIMEOUT_MS } from './connection.js';
import { ROLLUP_TABLES, rollupFromUsageSql } from './rollup.js';
import { INSERT_USAGE_SQL, USAGE_COLUMNS } from './row.js';
import { ENVIRONMENT_ERROR, RECORD_ERROR } from './sqlite-errors.js';

export const CHECKPOINT_INTERVAL_MS = 1_000;
/** How often the writer looks for segments of processes that died after this one started. */
export const JOURNAL_SCAN_MS = 30_000;
/**
 * A segment untouched this long is replayed even if its pid is alive (the pid was reused: a
 * container's pid 1 after a restart) or unknowable (written on another host sharing the file).
 * Its owner touches it every JOURNAL_HEARTBEAT_MS (journal.ts).
 */
export const JOURNAL_STALE_MS = 120_000;
/** The writer thread's nice value (Linux; elsewhere it keeps the process's priority). */
const WRITER_NICE = 10;
/** Rows per transaction when replaying: short lock holds next to other writers. */
const REPLAY_CHUNK = 1_000;

/**
 * `llm_meter_hist_add` and `llm_meter_hist_of` as in histogram.ts (see there for the format);
 * defines `registerHistogramFunctions(db)`.
 */
export const HISTOGRAM_FUNCTIONS_SOURCE = `
const BUCKETS = 256;
const PER_DOUBLING = 8;
const bucketIndex = (ms) => (ms >= 1 ? Math.min(BUCKETS - 1, 1 + Math.floor(PER_DOUBLING * Math.log2(ms))) : 0);
function addEncoded(histogram, blob) {
  if (!(blob instanceof Uint8Array) || blob.length === 0) return;
  if (blob[0] === 2) {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    for (let o = 1; o + 9 <= blob.length; o += 9) histogram[blob[o]] += view.getFloat64(o + 1, true);
    return;
  }
  for (let o = 1; o + 5 <= blob.length; o += 5) {
    histogram[blob[o]] += blob[o + 1] + blob[o + 2] * 0x100 + blob[o + 3] * 0x10000 + blob[o + 4] * 0x1000000;
  }
}
function encode(histogram) {
  let nonEmpty = 0;
  let wide = false;
  for (let i = 0; i < BUCKETS; i++) {
    if (histogram[i] > 0) {
      nonEmpty++;
      if (histogram[i] > 0xffffffff) wide = true;
    }
  }
  const step = wide ? 9 : 5;
  const blob = Buffer.allocUnsafe(1 + nonEmpty * step);
  blob.writeUInt8(wide ? 2 : 1, 0);
  let o = 1;
  for (let i = 0; i < BUCKETS; i++) {
    if (histogram[i] <= 0) continue;
    blob.writeUInt8(i, o);
    if (wide) blob.writeDoubleLE(histogram[i], o + 1);
    else blob.writeUInt32LE(histogram[i], o + 1);
    o += step;
  }
  return blob;
}
function registerHistogramFunctions(db) {
  const scratch = new Float64Array(BUCKETS);
  db.function('llm_meter_hist_add', { deterministic: true }, (a, b) => {
    scratch.fill(0);
    addEncoded(scratch, a);
    addEncoded(scratch, b);
    return encode(scratch);
  });
  db.aggregate('llm_meter_hist_of', {
    start: () => new Float64Array(BUCKETS),
    step: (histogram, ms) => {
      const value = typeof ms === 'bigint' ? Number(ms) : ms;
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) histogram[bucketIndex(value)] += 1;
    },
    result: encode,
  });
}
`;

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData: W } = require('node:worker_threads');
const fs = require('node:fs');
const { join } = require('node:path');
const Database = require(W.driver);
${HISTOGRAM_FUNCTIONS_SOURCE}
const send = (message) => parentPort.postMessage(message);
const ENVIRONMENT = new RegExp(W.environmentError);
const RECORD = new RegExp(W.recordError);
const codeOf = (e) => (e !== null && typeof e === 'object' && typeof e.code === 'string' ? e.code : undefined);
const isEnvironment = (e) => codeOf(e) !== undefined && ENVIRONMENT.test(codeOf(e));
const isRecord = (e) => e instanceof TypeError || e instanceof RangeError || (codeOf(e) !== undefined && RECORD.test(codeOf(e)));
const describe = (e) => ({
  code: codeOf(e) ?? (e instanceof Error ? e.name : 'Error'),
  message: e instanceof Error ? e.message : String(e),
});

// Below the event loop's priority (Linux: a thread's own nice value), so that when a batch
// wakes this thread on a busy machine it takes a free core or waits, instead of preempting
// the event loop that handed the batch over.
try {
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid !== process.pid) require('node:os').setPriority(tid, W.nice);
} catch {}

const db = new Database(W.path, { fileMustExist: true });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
registerHistogramFunctions(db);
const insert = db.prepare(W.insertSql);
const rollups = W.rollupSqls.map((sql) => db.prepare(sql));

// Lock waits as connection.ts's createLockWaits, off the caller's path: the full busy timeout,
// except while an outage is known, when attempts only probe briefly (so flush() answers).
const fullWait = Math.max(0, Math.floor(W.busyTimeoutMs));
const briefWait = Math.min(fullWait, W.briefWaitMs);
let currentWait = -1;
let outage = false;
function attempt(mode, write) {
  const ms = mode === 'close' || !outage ? fullWait : briefWait;
  if (ms !== currentWait) {
    db.pragma('busy_timeout = ' + ms);
    currentWait = ms;
  }
  try {
    const result = write();
    outage = false;
    return result;
  } catch (error) {
    outage = true;
    throw error;
  }
}

// A row's rollups come from the rows this transaction inserted (seq above the first one's
// predecessor), so a duplicate id, skipped by the insert, is never counted.
const writeBatch = db.transaction((rows) => {
  const tally = { duplicates: [], refused: [] };
  let first = 0;
  for (let i = 0; i < rows.length; i++) {
    const result = insert.run(rows[i]);
    if (result.changes === 0) tally.duplicates.push(i);
    else if (first === 0) first = Number(result.lastInsertRowid);
  }
  if (first !== 0) for (const rollup of rollups) rollup.run(first - 1);
  return tally;
});
const writeAlone = db.transaction((row) => {
  const result = insert.run(row);
  if (result.changes === 0) return false;
  const seq = Number(result.lastInsertRowid);
  for (const rollup of rollups) rollup.run(seq - 1);
  return true;
});
// After a batch failed for one of its rows: each row in its own savepoint, the failing ones refused.
const writeEach = db.transaction((rows) => {
  const tally = { duplicates: [], refused: [] };
  for (let i = 0; i < rows.length; i++) {
    try {
      if (!writeAlone(rows[i])) tally.duplicates.push(i);
    } catch (error) {
      if (isEnvironment(error)) throw error;
      tally.refused.push({ index: i, ...describe(error) });
    }
  }
  return tally;
});
function commit(rows) {
  try {
    return writeBatch.immediate(rows);
  } catch (error) {
    if (isEnvironment(error)) throw error;
    const tally = writeEach.immediate(rows);
    tally.batchError = describe(error);
    return tally;
  }
}

const parse = (line) => {
  try {
    const row = JSON.parse(line);
    return Array.isArray(row) ? row : null;
  } catch {
    return null;
  }
};

// Jobs run in order: replays of dead processes' segments, the batches of this store.
const jobs = [];
let failures = 0;
let retryTimer = null;
let lastFailure = null;
const delayMs = () => W.retryDelaysMs[Math.min(failures, W.retryDelaysMs.length) - 1];

/** Commit the jobs in order; false when one failed (it stays first and is retried after a backoff). */
function run(mode) {
  if (retryTimer !== null) clearTimeout(retryTimer);
  retryTimer = null;
  while (jobs.length > 0) {
    const job = jobs[0];
    let tally;
    try {
      tally = attempt(mode, () => commit(job.rows));
    } catch (error) {
      if (isEnvironment(error) || !isRecord(error)) {
        failures++;
        lastFailure = describe(error);
        send({ t: 'failed', job: job.kind, error: lastFailure });
        if (mode !== 'close') retryTimer = setTimeout(() => run('background'), delayMs());
        return false;
      }
      tally = { duplicates: [], refused: job.rows.map((_, index) => ({ index, ...describe(error) })) };
    }
    jobs.shift();
    failures = 0;
    if (job.kind === 'batch') send({ t: 'done', id: job.id, ...tally });
    else replayed(job, tally);
  }
  return true;
}

// ---------------------------------------------------------------- journal segments of dead processes
const live = new Set();
const queued = new Set();

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function header(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, n).toString('utf8');
    const end = text.indexOf('\\n');
    return end < 0 ? null : JSON.parse(text.slice(0, end));
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** Segments whose writer is gone: same host and pid dead, or untouched for staleMs. */
function orphans() {
  let names;
  try {
    names = fs.readdirSync(W.journalDir);
  } catch {
    return [];
  }
  const found = [];
  for (const name of names) {
    if (!name.endsWith('.ndjson') || live.has(name) || queued.has(name)) continue;
    const file = join(W.journalDir, name);
    try {
      const stale = Date.now() - fs.statSync(file).mtimeMs > W.staleMs;
      const head = stale ? null : header(file);
      if (stale || (head !== null && head.host === W.host && !alive(head.pid))) found.push(name);
    } catch {
      // Gone meanwhile: another process replayed it.
    }
  }
  return found;
}

function columnMap(head) {
  const columns = head !== null && Array.isArray(head.columns) ? head.columns : W.columns;
  if (columns.length === W.columns.length && columns.every((c, i) => c === W.columns[i])) return null;
  const at = W.columns.map((c) => columns.indexOf(c));
  return (values) => at.map((i) => (i < 0 ? null : values[i] === undefined ? null : values[i]));
}

function queueReplay(name) {
  const file = join(W.journalDir, name);
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\\n');
  let head = null;
  try {
    head = JSON.parse(lines[0]);
  } catch {}
  const map = columnMap(head !== null && typeof head === 'object' ? head : null);
  const stats = { file: name, rows: 0, inserted: 0, duplicates: 0, refused: 0, unreadable: 0 };
  const rows = [];
  // A line that does not parse (the last one, torn by the crash) is counted and skipped.
  for (let i = head === null ? 0 : 1; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const row = parse(lines[i]);
    if (row === null) stats.unreadable++;
    else rows.push(map === null ? row : map(row));
  }
  stats.rows = rows.length;
  queued.add(name);
  for (let i = 0; i === 0 || i < rows.length; i += W.replayChunk) {
    jobs.push({ kind: 'replay', rows: rows.slice(i, i + W.replayChunk), stats, file, last: i + W.replayChunk >= rows.length });
  }
}

function replayed(job, tally) {
  const { stats } = job;
  stats.duplicates += tally.duplicates.length;
  stats.refused += tally.refused.length;
  stats.inserted += job.rows.length - tally.duplicates.length - tally.refused.length;
  if (!job.last) return;
  try {
    fs.unlinkSync(job.file);
  } catch {
    // Another process replayed it too: its rows are stored once either way.
  }
  queued.delete(stats.file);
  send({ t: 'replayed', ...stats });
}

function scan() {
  if (W.journalDir === null) return;
  for (const name of orphans()) queueReplay(name);
  if (retryTimer === null) run('background');
}

const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or gone: the next interval tries again.
  }
};
const checkpointTimer = setInterval(checkpoint, W.checkpointIntervalMs);
const scanTimer = W.journalDir === null ? null : setInterval(scan, W.scanIntervalMs);

parentPort.on('message', (message) => {
  switch (message.t) {
    case 'batch': {
      if (message.segment) live.add(message.segment);
      const rows = [];
      for (const line of message.lines.split('\\n')) rows.push(parse(line));
      jobs.push({ kind: 'batch', id: message.id, rows });
      if (retryTimer === null) run('background');
      break;
    }
    case 'run': {
      const ok = run(message.mode);
      send({ t: 'ran', id: message.id, ok, error: ok ? null : lastFailure });
      break;
    }
    case 'stop': {
      clearInterval(checkpointTimer);
      if (scanTimer !== null) clearInterval(scanTimer);
      if (retryTimer !== null) clearTimeout(retryTimer);
      checkpoint();
      db.close();
      send({ t: 'stopped' });
      parentPort.close();
      break;
    }
  }
});
scan();
`;

/** From the writer thread to the event loop. */
export type WriterEvent =
  | { t: 'done'; id: number; duplicates: number[]; refused: Refusal[]; batchError?: WorkerError }
  | { t: 'failed'; job: 'batch' | 'replay'; error: WorkerError }
  | { t: 'ran'; id: number; ok: boolean; error: WorkerError | null }
  | {
      t: 'replayed';
      file: string;
      rows: number;
      inserted: number;
      duplicates: number;
      refused: number;
      unreadable: number;
    }
  | { t: 'stopped' };

/** An error as it crosses threads: its SQLite code (or class name) and message. */
export interface WorkerError {
  code: string;
  message: string;
}
export interface Refusal extends WorkerError {
  /** The row's index in its batch. */
  index: number;
}

/** Why a batch is committed: in the background, for flush(), or as the last attempt at close. */
export type RunMode = 'background' | 'flush' | 'close';

export interface WriterWorkerOptions {
  path: string;
  busyTimeoutMs: number;
  checkpointIntervalMs?: number | undefined;
  /** The journal folder whose dead segments the thread replays; null for none. */
  journalDir: string | null;
  /** Called for every event, and once with `exit` when the thread stops, however it stops. */
  onEvent(event: WriterEvent): void;
  onExit(error: unknown): void;
}

export interface WriterWorker {
  /** Hand over a batch: `lines` are the rows' journal lines joined by '\n'. */
  batch(id: number, lines: string, segment: string | null): void;
  /** Commit whatever the thread holds now; answered by a `ran` event with the same id. */
  run(id: number, mode: RunMode): void;
  /** Keep the process alive while work is in flight, not otherwise. */
  ref(): void;
  unref(): void;
  /** Stop the thread (after a last checkpoint); resolves once it has exited. */
  stop(): Promise<void>;
}

/** null when no thread could be started. */
export function startWriterWorker(options: WriterWorkerOptions): WriterWorker | null {
  let worker: Worker;
  try {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path: options.path,
        busyTimeoutMs: options.busyTimeoutMs,
        briefWaitMs: BRIEF_BUSY_TIMEOUT_MS,
        retryDelaysMs: Array.from({ length: 11 }, (_, i) => retryDelayMs(i + 1)),
        checkpointIntervalMs: options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS,
        insertSql: INSERT_USAGE_SQL,
        rollupSqls: ROLLUP_TABLES.map(rollupFromUsageSql),
        columns: USAGE_COLUMNS,
        environmentError: ENVIRONMENT_ERROR.source,
        recordError: RECORD_ERROR.source,
        journalDir: options.journalDir,
        host: hostname(),
        staleMs: JOURNAL_STALE_MS,
        scanIntervalMs: JOURNAL_SCAN_MS,
        replayChunk: REPLAY_CHUNK,
        nice: WRITER_NICE,
      },
    });
  } catch (error) {
    options.onExit(error);
    return null;
  }
  worker.unref();
  let failure: unknown;
  worker.on('message', (event: WriterEvent) => options.onEvent(event));
  worker.on('error', (error) => {
    failure = error;
  });
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', (code) => {
      options.onExit(
        failure ?? (code === 0 ? undefined : new Error(`writer thread exited with code ${code}`)),
      );
      resolve();
    }),
  );
  return {
    batch: (id, lines, segment) => worker.postMessage({ t: 'batch', id, lines, segment }),
    run: (id, mode) => worker.postMessage({ t: 'run', id, mode }),
    ref: () => worker.ref(),
    unref: () => worker.unref(),
    async stop() {
      worker.ref();
      worker.postMessage({ t: 'stop' });
      const timeout = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
