/**
 * The journal of 'journal' durability: what makes a completed call survive a kill -9 while its
 * commit happens on another thread.
 *
 * write() appends the row (one line: a JSON array of its values in USAGE_COLUMNS order) to this
 * process's current segment with one synchronous write(2) before it returns. The line is then in
 * the kernel's page cache, which a killed process does not take with it: the same promise a WAL
 * commit with synchronous=NORMAL makes (connection.ts). Neither is fsynced, so neither survives a
 * power loss or a kernel crash; the database stays consistent either way.
 *
 * Segments live in `<db>-usage-journal/` (0700), as `<pid>-<random>.ndjson` (0600), each starting with
 * a header line (format, pid, host, columns). A segment is closed past SEGMENT_BYTES and deleted
 * once every line in it is committed (or given up); at close() the segments still holding
 * uncommitted lines stay, marked stale, for the next open (of any process) to replay. The writer thread (writer-worker.ts) replays the
 * segments of dead processes: inserts skip ids already stored and rollups count only the rows
 * inserted, so a segment replayed twice, or replayed after its rows were committed, counts
 * each call once.
 *
 * A line that cannot be written (disk full, file size limit, I/O error) is reported, and the
 * journal rests for BROKEN_MS before it tries again: meanwhile records are committed like
 * 'async' ones. The segment the failure hit is closed (its last line may be torn; a replay skips
 * a line that does not parse).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  futimesSync,
  mkdirSync,
  openSync,
  rmdirSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { USAGE_COLUMNS } from './row.js';

/** A segment past this size is closed and a new one started. */
export const SEGMENT_BYTES = 1 << 20;
/**
 * How often the owner touches its segment: the mtime tells other processes it is alive even where
 * its pid says nothing (another host, a reused pid). See JOURNAL_STALE_MS in writer-worker.ts.
 */
export const JOURNAL_HEARTBEAT_MS = 10_000;
const BROKEN_MS = 1_000;

export interface Segment {
  readonly name: string;
}

interface OpenSegment extends Segment {
  readonly path: string;
  fd: number | null;
  bytes: number;
  /** Lines written and not yet settled. */
  outstanding: number;
}

export interface Journal {
  readonly dir: string;
  /** Append one line. Returns its segment, or null when it could not be written. Never throws. */
  append(line: string): Segment | null;
  /** A line of `segment` was committed or given up. */
  settle(segment: Segment | null): void;
  /** The segment lines go to now, if one is open. */
  current(): Segment | null;
  /**
   * Close the current segment and delete every segment, or with `keepUnsettled` only those whose
   * lines were all settled; removes the folder when it is empty. Returns the segments kept.
   */
  close(keepUnsettled: boolean): number;
}

/**
 * Next to the database, under a name none of SQLite's own files take (`-journal` would: SQLite
 * looks for a rollback journal of that name when it opens the file).
 */
export const journalDir = (databasePath: string): string => `${databasePath}-usage-journal`;

export function openJournal(
  dir: string,
  options: { onError(error: unknown): void; now?: (() => number) | undefined },
): Journal {
  const now = options.now ?? Date.now;
  const segments = new Set<OpenSegment>();
  let current: OpenSegment | null = null;
  let brokenUntil = 0;

  const remove = (segment: OpenSegment) => {
    segments.delete(segment);
    try {
      unlinkSync(segment.path);
    } catch {
      // Already gone (replayed by another process that thought this one dead).
    }
  };

  const retire = (segment: OpenSegment) => {
    if (segment === current) current = null;
    if (segment.fd !== null) {
      try {
        closeSync(segment.fd);
      } catch {
        // Nothing more will be written to it either way.
      }
      segment.fd = null;
    }
    if (segment.outstanding === 0) remove(segment);
  };

  const start = (): OpenSegment => {
    const name = `${process.pid}-${randomBytes(6).toString('hex')}.ndjson`;
    const path = join(dir, name);
    // Again each time: another store on the same file may have removed it, empty, at its close.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'ax', 0o600);
    const segment: OpenSegment = { name, path, fd, bytes: 0, outstanding: 0 };
    segments.add(segment);
    current = segment;
    const head = `${JSON.stringify({ llm_meter_journal: 1, pid: process.pid, host: hostname(), columns: USAGE_COLUMNS, created_ms: now() })}\n`;
    segment.bytes = writeSync(fd, head);
    return segment;
  };

  // Every segment still holding uncommitted lines, not only the current one: a long outage must
  // not make a closed segment look abandoned.
  const heartbeat = setInterval(() => {
    const t = new Date(now());
    for (const segment of segments) {
      try {
        if (segment.fd === null) {
          utimesSync(segment.path, t, t);
          continue;
        }
        // Deleted by a process that took this one for dead: what follows goes to a new segment.
        if (fstatSync(segment.fd).nlink === 0) retire(segment);
        else futimesSync(segment.fd, t, t);
      } catch {
        // The next append reports what is wrong.
      }
    }
  }, JOURNAL_HEARTBEAT_MS);
  heartbeat.unref();

  return {
    dir,
    append(line) {
      if (brokenUntil !== 0) {
        if (now() < brokenUntil) return null;
        brokenUntil = 0;
      }
      let segment = current;
      try {
        segment ??= start();
        const text = `${line}\n`;
        const written = writeSync(segment.fd!, text);
        segment.bytes += written;
        if (written !== Buffer.byteLength(text)) throw new Error('short write to the usage journal');
        segment.outstanding++;
        if (segment.bytes >= SEGMENT_BYTES) retire(segment);
        return segment;
      } catch (error) {
        const broken = segment ?? current;
        if (broken) retire(broken);
        brokenUntil = now() + BROKEN_MS;
        options.onError(error);
        return null;
      }
    },
    settle(segment) {
      if (segment === null) return;
      const open = segment as OpenSegment;
      open.outstanding--;
      if (open.outstanding === 0 && open.fd === null) remove(open);
    },
    current: () => current,
    close(keepUnsettled) {
      clearInterval(heartbeat);
      if (current) retire(current);
      let kept = 0;
      for (const segment of [...segments]) {
        if (!keepUnsettled || segment.outstanding === 0) {
          remove(segment);
          continue;
        }
        kept++;
        try {
          // Nobody writes it any more: stale at once, so the next store to open replays it.
          utimesSync(segment.path, 0, 0);
        } catch {
          // Then it is replayed once JOURNAL_STALE_MS has passed.
        }
      }
      try {
        rmdirSync(dir);
      } catch {
        // Not empty: another process's segments, or ours kept for the next open.
      }
      return kept;
    },
  };
}
