import { openSqliteStore } from '../store/sqlite.js';
import { MAX_SUMMARY_GROUPS } from '../store/summary.js';
import { GROUP_BY_KEYS, type GroupByKey, TIME_BUCKETS } from '../store/types.js';
import { DB_FLAG, dbPath, instant, parse, positiveInt, str, table, UsageError } from './args.js';
import { terminalJson } from './terminal.js';

const REPORT_HELP = `Usage: llm-meter report [--group-by model,user,day] [--from ISO] [--to ISO] [--tz ZONE] [--limit N] [--json] [--db PATH]

Spend, tokens, errors and latency from the usage database, grouped by any of:
${GROUP_BY_KEYS.join(', ')}. Default: --group-by model, all time.
--limit: most groups shown, 1 to ${MAX_SUMMARY_GROUPS} (the default); the rest is one row.
`;

export async function reportCommand(args: string[], out: (s: string) => void): Promise<void> {
  const { values } = parse(args, {
    ...DB_FLAG,
    'group-by': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    tz: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) return out(REPORT_HELP);
  const groupBy = (str(values, 'group-by') ?? 'model').split(',').map((g) => g.trim());
  for (const g of groupBy) {
    if (!(GROUP_BY_KEYS as readonly string[]).includes(g)) {
      throw new UsageError(
        `Invalid \`--group-by\` value "${g}": expected any of ${GROUP_BY_KEYS.join(', ')}.`,
      );
    }
  }
  const limit = positiveInt(values, 'limit', MAX_SUMMARY_GROUPS);
  if (limit > MAX_SUMMARY_GROUPS) {
    throw new UsageError(`Expected \`--limit\` to be an integer from 1 to ${MAX_SUMMARY_GROUPS}.`);
  }
  const store = openSqliteStore({ path: dbPath(values) });
  try {
    const result = await store.summary({
      groupBy: groupBy as GroupByKey[],
      fromMs: instant(values, 'from'),
      toMs: instant(values, 'to'),
      tz: str(values, 'tz'),
      limit,
    });
    if (values.json) return out(`${terminalJson(result)}\n`);
    const money = (usd: number | null) => (usd === null ? null : `$${usd.toFixed(6)}`);
    const ms = (v: number | null) => (v === null ? null : Math.round(v));
    // The row that adds up the groups past the report's limit says how many it holds there.
    const firstDimension = groupBy.findIndex((g) => !(TIME_BUCKETS as readonly string[]).includes(g));
    const rows = [
      ...result.rows,
      { ...result.totals, ...Object.fromEntries(groupBy.map((g, i) => [g, i === 0 ? 'TOTAL' : ''])) },
    ];
    out(
      `${table(
        [
          ...groupBy,
          'requests',
          'errors',
          'input',
          'cached',
          'output',
          'cost',
          'unpriced',
          'p50 ms',
          'p95 ms',
          'ttft p50',
        ],
        rows.map((r) => [
          ...groupBy.map((g, i) =>
            'other' in r && r.other && i === firstDimension
              ? `(${r.other_groups} others)`
              : ((r as unknown as Record<string, string | null>)[g] ?? null),
          ),
          r.requests,
          r.errors,
          r.input_tokens,
          r.cached_input_tokens,
          r.output_tokens,
          money(r.cost_usd),
          r.unpriced_requests,
          ms(r.latency_p50_ms),
          ms(r.latency_p95_ms),
          ms(r.ttft_p50_ms),
        ]),
      )}\n`,
    );
  } finally {
    await store.close();
  }
}
