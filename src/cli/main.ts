#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const HELP = `llm-meter: cost and usage observability for LLM API calls

Usage: llm-meter <command> [options]

Commands:
  demo      run the provider simulator with metered calls and print a per-call table

Options:
  -h, --help   show help for a command
`;

const DEMO_HELP = `Usage: llm-meter demo [--calls N] [--concurrency N]

Starts the built-in provider simulator on loopback, makes a mixed workload of metered
calls (OpenAI, Anthropic, Groq-style; streaming and not; rate limits, a cut stream, a
cancelled stream) and prints one row per call. Spans go to the console, or over OTLP/HTTP
when OTEL_EXPORTER_OTLP_ENDPOINT is set.
`;

function fail(message: string): never {
  process.stderr.write(`llm-meter: ${message}\n`);
  process.exit(2);
}

function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    fail(`Expected \`--${name}\` to be a positive integer, got "${value}".`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  if (command === 'demo') {
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args: rest,
        options: {
          calls: { type: 'string' },
          concurrency: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
        strict: true,
      }));
    } catch (error) {
      fail((error as Error).message);
    }
    if (values.help) {
      process.stdout.write(DEMO_HELP);
      return;
    }
    await runDemo({
      calls: intFlag('calls', values.calls as string | undefined, 18),
      concurrency: intFlag('concurrency', values.concurrency as string | undefined, 4),
    });
    return;
  }
  fail(`unknown command "${command}". Run \`llm-meter --help\`.`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`llm-meter: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
