import { isBudgetInputError } from '../budgets/errors.js';
import { SCOPE_KEYS } from '../common/budget-shape.js';
import { createMeter } from '../meter.js';
import { DB_FLAG, dbPath, parse, positiveNumber, str, table, UsageError } from './args.js';
import { printable, terminalJson } from './terminal.js';

const BUDGETS_HELP = `Usage:
  llm-meter budgets list [--db PATH] [--json]
  llm-meter budgets create --name NAME --limit-usd N --period day|week|month|total
                           [--user U] [--project P] [--feature F] [--model M] [--provider P]
                           [--timezone ZONE] [--thresholds 0.5,0.8,1] [--action alert|block]
                           [--webhook-url URL] [--db PATH]
  llm-meter budgets delete <id> [--db PATH]
`;

export async function budgetsCommand(args: string[], out: (s: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  if (!sub || sub === '-h' || sub === '--help') return out(BUDGETS_HELP);
  const flags = {
    ...DB_FLAG,
    json: { type: 'boolean' as const },
    name: { type: 'string' as const },
    'limit-usd': { type: 'string' as const },
    period: { type: 'string' as const },
    timezone: { type: 'string' as const },
    thresholds: { type: 'string' as const },
    action: { type: 'string' as const },
    'webhook-url': { type: 'string' as const },
    user: { type: 'string' as const },
    project: { type: 'string' as const },
    feature: { type: 'string' as const },
    model: { type: 'string' as const },
    provider: { type: 'string' as const },
  };
  const { values, positionals } = parse(rest, flags, true);
  if (values.help) return out(BUDGETS_HELP);
  if (!['list', 'create', 'delete'].includes(sub)) throw new UsageError(`Unknown budgets command "${sub}".`);
  const meter = createMeter({ database: dbPath(values), webhookPollIntervalMs: 0 });
  const budgets = meter.budgets!;
  try {
    if (sub === 'list') {
      const list = await budgets.list();
      if (values.json) return out(`${terminalJson({ budgets: list })}\n`);
      out(
        `${table(
          ['id', 'name', 'scope', 'period', 'action', 'limit', 'spent', 'forecast'],
          list.map((b) => [
            b.id,
            b.name,
            Object.entries(b.scope)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || 'global',
            b.period,
            b.action,
            `$${b.limit_usd.toFixed(2)}`,
            `$${b.spent_usd.toFixed(4)}`,
            b.forecast_usd === null ? null : `$${b.forecast_usd.toFixed(4)}`,
          ]),
        )}\n`,
      );
    } else if (sub === 'create') {
      const scope = Object.fromEntries(
        SCOPE_KEYS.map((k) => [k, str(values, k)] as const).filter(([, v]) => v !== undefined),
      );
      const thresholds = str(values, 'thresholds')
        ?.split(',')
        .map((t) => Number(t));
      try {
        const { budget, webhookSecret } = await budgets.create({
          name: str(values, 'name') ?? '',
          scope,
          period: (str(values, 'period') ?? '') as 'day',
          timezone: str(values, 'timezone'),
          limit_usd: positiveNumber(values, 'limit-usd') ?? Number.NaN,
          thresholds,
          action: str(values, 'action') as 'alert' | undefined,
          webhook_url: str(values, 'webhook-url'),
        });
        out(`created budget ${budget.id} (${printable(budget.name)})\n`);
        if (webhookSecret) out(`webhook secret (shown once): ${webhookSecret}\n`);
      } catch (error) {
        if (isBudgetInputError(error)) {
          throw new UsageError(`${error.message} (flag --${error.field.split('.')[0]?.replace(/_/g, '-')})`);
        }
        throw error;
      }
    } else {
      const id = positionals[0];
      if (!id) throw new UsageError('Missing <id> (see `llm-meter budgets list`).');
      if (!budgets.delete(id)) {
        out(`no budget ${printable(id)}\n`);
        process.exitCode = 1;
      } else out(`deleted ${printable(id)}\n`);
    }
  } finally {
    await meter.shutdown();
  }
}
