import { contextWindow, createPriceBook } from '../pricing/index.js';
import { migrateFile } from '../store/migrate.js';
import { openSqliteStore } from '../store/sqlite.js';
import { DB_FLAG, dbPath, duration, parse, str, UsageError } from './args.js';
import { printable } from './terminal.js';

const MIGRATE_HELP = `Usage: llm-meter migrate [--db PATH]

Applies the numbered migrations in migrations/ to the SQLite database (default
./llm-meter.db or $LLM_METER_DB). Safe to run while other processes use the file; refuses a
database newer than this llm-meter.
`;

export async function migrateCommand(args: string[], out: (s: string) => void): Promise<void> {
  const { values } = parse(args, DB_FLAG);
  if (values.help) return out(MIGRATE_HELP);
  const path = printable(dbPath(values));
  const result = migrateFile(dbPath(values));
  out(
    result.applied.length === 0
      ? `${path}: schema version ${result.to}, up to date\n`
      : `${path}: schema version ${result.from} → ${result.to} (applied ${result.applied.join(', ')})\n`,
  );
}

const PRUNE_HELP = `Usage: llm-meter prune --older-than <90d|12h|...> [--db PATH]

Deletes raw usage rows older than the given age. Hourly and daily rollups stay, so summaries
over the pruned time still answer (at hour granularity).
`;

export async function pruneCommand(args: string[], out: (s: string) => void): Promise<void> {
  const { values } = parse(args, { ...DB_FLAG, 'older-than': { type: 'string' } });
  if (values.help) return out(PRUNE_HELP);
  const age = duration(values, 'older-than');
  if (age === undefined) throw new UsageError('Missing `--older-than` (for example `--older-than 90d`).');
  const store = openSqliteStore({ path: dbPath(values) });
  try {
    const result = await store.prune(age);
    out(`deleted ${result.deleted} rows before ${new Date(result.cutoffMs).toISOString()}; rollups kept\n`);
  } finally {
    await store.close();
  }
}

const PRICES_HELP = `Usage: llm-meter prices <model> [--provider NAME]

Shows the price llm-meter would use for a model (USD per 1M tokens), where it comes from, and
the model's context window when known. Provider names are OpenTelemetry's gen_ai.provider.name
values: openai, anthropic, azure.ai.openai, gcp.gemini, groq, deepseek, ...
`;

export async function pricesCommand(args: string[], out: (s: string) => void): Promise<void> {
  const { values, positionals } = parse(args, { provider: { type: 'string' } }, true);
  if (values.help) return out(PRICES_HELP);
  const model = positionals[0];
  const shown = model === undefined ? '' : printable(model);
  if (!model) throw new UsageError('Missing <model> (for example `llm-meter prices gpt-4o-mini`).');
  const provider = str(values, 'provider') ?? null;
  const price = createPriceBook().lookup(provider, model);
  if (!price) {
    out(`${shown}: no known price (calls are recorded as unpriced; set one with createMeter({ prices }))\n`);
    process.exitCode = 1;
    return;
  }
  const perM = (nanosPerToken: number) => `$${((nanosPerToken * 1e6) / 1e9).toFixed(4)}`;
  const window = contextWindow(provider, model);
  out(
    [
      `${shown} (priced as ${printable(price.pricedAs)}, source: ${price.source})`,
      `  input        ${perM(price.inputNanosPerToken)} / 1M tokens`,
      `  cached input ${perM(price.cacheReadNanosPerToken)} / 1M tokens`,
      `  cache write  ${perM(price.cacheWriteNanosPerToken)} / 1M tokens`,
      `  output       ${perM(price.outputNanosPerToken)} / 1M tokens`,
      `  context      ${window === null ? 'unknown' : `${window} tokens`}`,
      '',
    ].join('\n'),
  );
}
