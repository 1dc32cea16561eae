#!/usr/bin/env node
import { migrateCommand, pricesCommand, pruneCommand } from './admin.js';
import { isUsageError, parse, positiveInt, str, UsageError } from './args.js';
import { budgetsCommand } from './budgets.js';
import { runDemo } from './demo.js';
import { proxyCommand } from './proxy.js';
import { reportCommand } from './report.js';
import { serveCommand } from './serve.js';
import { printable } from './terminal.js';

const HELP = `llm-meter: cost and usage observability for LLM API calls

Usage: llm-meter <command> [options]

Commands:
  serve     the reporting server: dashboard, JSON API, /metrics (--demo adds traffic)
  demo      the provider simulator with metered calls, a per-call table and a summary
  proxy     a metering gateway for clients in any language (change their base URL)
  report    spend, tokens, errors and latency from the usage database
  budgets   list, create or delete budgets
  migrate   bring the database schema up to date
  prune     delete raw rows older than an age (rollups are kept)
  prices    the price llm-meter would use for a model, and its source

Run \`llm-meter <command> --help\` for a command's options.
Exit codes: 0 success, 1 failure, 2 bad usage.
`;

const DEMO_HELP = `Usage: llm-meter demo [--calls N] [--concurrency N] [--db PATH]

Starts the built-in provider simulator on loopback, makes a mixed workload of metered
calls (OpenAI, Anthropic, Groq-style; streaming and not; a rate limit, a cut stream, an
overloaded provider, a cancelled stream), prints one row per call and a summary from the
usage store. Spans go to the console, or over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is
set. Without --db the usage store is in memory.
`;

type Command = (args: string[], out: (s: string) => void) => Promise<void>;

const demoCommand: Command = async (args, out) => {
  const { values } = parse(args, {
    calls: { type: 'string' },
    concurrency: { type: 'string' },
    db: { type: 'string' },
  });
  if (values.help) return out(DEMO_HELP);
  await runDemo({
    calls: positiveInt(values, 'calls', 18),
    concurrency: positiveInt(values, 'concurrency', 4),
    database: str(values, 'db'),
  });
};

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  demo: demoCommand,
  proxy: proxyCommand,
  report: reportCommand,
  budgets: budgetsCommand,
  migrate: migrateCommand,
  prune: pruneCommand,
  prices: pricesCommand,
};

export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    out(HELP);
    return 0;
  }
  const run = COMMANDS[command];
  try {
    if (!run) throw new UsageError(`Unknown command "${command}". Run \`llm-meter --help\`.`);
    await run(rest, out);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    const e = error as Error;
    // Messages quote flags, values and names as given: printable() keeps them from driving the terminal.
    process.stderr.write(`llm-meter ${printable(command)}: ${printable(e?.message ?? String(error))}\n`);
    return isUsageError(error) ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  () => {
    process.exitCode = 1;
  },
);
