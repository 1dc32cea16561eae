import { type ParseArgsConfig, parseArgs } from 'node:util';
import { hasKind, LlmMeterError, markKind } from '../errors/errors.js';
import { printable } from './terminal.js';

/** A usage error: the message names the bad flag; the CLI exits with 2. */
export class UsageError extends LlmMeterError {
  override name = 'UsageError' as const;
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    markKind(this, 'UsageError');
  }
}

export function isUsageError(error: unknown): error is UsageError {
  return error instanceof UsageError || hasKind(error, 'UsageError');
}

type Options = NonNullable<ParseArgsConfig['options']>;

interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(args: string[], options: Options, allowPositionals = false): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function str(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function positiveInt(values: Parsed['values'], name: string, fallback: number): number {
  const raw = str(values, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`Expected \`--${name}\` to be a positive integer, got "${raw}".`);
  return n;
}

/** A TCP port; 0 asks the system for a free one. */
export function portNumber(values: Parsed['values'], name: string): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new UsageError(`Expected \`--${name}\` to be a port number (0-65535), got "${raw}".`);
  return n;
}

export function positiveNumber(values: Parsed['values'], name: string): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`Expected \`--${name}\` to be a positive number, got "${raw}".`);
  return n;
}

/** `90d`, `12h`, `30m`, `45s` → milliseconds. */
export function duration(values: Parsed['values'], name: string): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(d|h|m|s)$/.exec(raw.trim());
  if (!m) throw new UsageError(`Expected \`--${name}\` to be a duration like 90d, 12h or 30m, got "${raw}".`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 }[m[2] as 'd' | 'h' | 'm' | 's'];
  return Number(m[1]) * unit;
}

/** An ISO 8601 instant or a plain date. */
export function instant(values: Parsed['values'], name: string): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  const t = Date.parse(raw);
  if (Number.isNaN(t))
    throw new UsageError(`Expected \`--${name}\` to be an ISO 8601 date or time, got "${raw}".`);
  return t;
}

export function dbPath(values: Parsed['values']): string {
  return str(values, 'db') ?? process.env.LLM_METER_DB ?? './llm-meter.db';
}

export const DB_FLAG = { db: { type: 'string' as const } };

/** A plain text table; numbers right-aligned; every cell printable() (they hold stored text). */
export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null ? '-' : printable(String(c)))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[], numeric: boolean[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null),
  );
  return [
    line(headers, numeric),
    line(
      widths.map((w) => '-'.repeat(w)),
      numeric,
    ),
    ...cells.map((r) => line(r, numeric)),
  ].join('\n');
}
