/**
 * Events as CSV, streamed: rows are written a page at a time and the writer waits for the
 * socket to drain, so an export of any size holds one page in memory.
 */
import type { Response } from 'express';
import { drained } from '../backpressure.js';
import type { UsageEvent } from '../store/types.js';

/** Every event field but `content` (prompts stay out of spreadsheets). */
export const CSV_COLUMNS = [
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
 * RFC 4180 quoting; text starting like a formula gets a leading apostrophe so a spreadsheet
 * shows it instead of evaluating it (OWASP "CSV injection").
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(event: UsageEvent): string {
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
