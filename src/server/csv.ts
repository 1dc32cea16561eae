/**
 * Events as CSV, streamed: rows are written a page at a time and the writer waits for the
 * socket to drain, so an export of any size holds one page in memory.
 */
import type { Response } from 'express';
import { drained } from '../backpressure.js';
import type { UsageEvent } from '../store/types.js';

/** Every event field but `content` (prompts stay out of spreadsheets). */
const CSV_COLUMNS = [
  'id',
  'time',
  'end_time',
  'provider',
  'operation',
  'model',
  'request_model',
  'response_model',
  'user',
  'project',
  'feature',
  'tags',
  'stream',
  'outcome',
  'error_type',
  'error_code',
  'http_status',
  'finish_reasons',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'tokens_source',
  'cost_usd',
  'cost_source',
  'priced_as',
  'duration_ms',
  'ttft_ms',
  'queue_ms',
  'queue_source',
  'prefill_ms',
  'prefill_source',
  'generation_ms',
  'generation_source',
  'output_tokens_per_second',
  'tool_rounds',
  'tool_calls',
  'invalid_tool_calls',
  'chunks',
  'trace_id',
  'span_id',
  'response_id',
  'api_key_hash',
] as const satisfies ReadonlyArray<keyof UsageEvent>;

/**
 * A leading character that makes a spreadsheet evaluate the cell (OWASP "CSV injection"),
 * spaces before it included, and the full-width forms some spreadsheets also accept.
 */
const FORMULA_START = /^[\t\r\n]|^[\s\u3000]*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]/;
/**
 * Characters a spreadsheet may split a cell on or end it at: `,`, and also `;` and a tab,
 * which many locales use as the separator. Inside quotes none of them splits the cell.
 */
const NEEDS_QUOTES = /[",;\t\r\n]/;

/**
 * One cell, RFC 4180 quoted. Text that starts like a formula gets a leading apostrophe, so a
 * spreadsheet shows it instead of evaluating it, and is quoted; so is text with a separator of
 * any locale, so that what follows a `;` (`x;=cmd|...`) can never become a cell of its own.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  const formula = FORMULA_START.test(text);
  if (formula) text = `'${text}`;
  return formula || NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvLine(event: UsageEvent): string {
  return `${CSV_COLUMNS.map((column) => csvCell(event[column])).join(',')}\r\n`;
}

const CHUNK_ROWS = 500;

export async function streamCsv(res: Response, events: AsyncIterable<UsageEvent>): Promise<void> {
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const write = async (chunk: string) => {
    if (res.write(chunk) || closed) return;
    await drained(res);
  };
  res.status(200);
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', 'attachment; filename="llm-meter-events.csv"');
  await write(`${CSV_COLUMNS.join(',')}\r\n`);
  let lines: string[] = [];
  for await (const event of events) {
    if (closed) return;
    lines.push(csvLine(event));
    if (lines.length >= CHUNK_ROWS) {
      await write(lines.join(''));
      lines = [];
    }
  }
  if (lines.length > 0 && !closed) await write(lines.join(''));
  res.end();
}
