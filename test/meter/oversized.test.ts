import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_EVENT_BYTES } from '../../src/fetch/bytes.js';
import { type CallRecord, createMeter, type MeterOptions } from '../../src/index.js';
import { bodyBytes, type ReplayServer, startReplay } from '../helpers/replay.js';

/**
 * Red-team issue 12.3: a stream event larger than the parser's cap (8 MiB) is passed to the caller
 * but not read. What it said is unknown, so the usage is estimated, counts its bytes where the
 * provider's final figures were not read, and says how many bytes were not read — never a silent
 * 0. The same for NDJSON lines and a JSON body over `maxResponseBodyBytes`.
 */

const encoder = new TextEncoder();
const CAP = DEFAULT_MAX_EVENT_BYTES;
/** Text that makes one event just over the cap. */
const big = 'x'.repeat(CAP + 1024);
const sse = (...events: string[]) => encoder.encode(events.map((e) => `${e}\n\n`).join(''));
const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}`;

const anthropic = (type: string, body: Record<string, unknown>) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}`;

const ROUTES = {
  // An OpenAI-compatible server that ignores include_usage: no usage anywhere.
  '/v1/chat/completions': {
    headers: { 'content-type': 'text/event-stream' },
    pieces: [
      sse(chunk({ role: 'assistant', content: 'hi' })),
      sse(chunk({ content: big })),
      sse(chunk({}, 'stop'), 'data: [DONE]'),
    ],
  },
  '/v1/messages': {
    headers: { 'content-type': 'text/event-stream' },
    pieces: [
      sse(
        anthropic('message_start', {
          message: { id: 'm1', model: 'claude-haiku-4-5', usage: { input_tokens: 10, output_tokens: 1 } },
        }),
        anthropic('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ),
      sse(anthropic('content_block_delta', { index: 0, delta: { type: 'text_delta', text: big } })),
      sse(
        anthropic('content_block_stop', { index: 0 }),
        anthropic('message_delta', {
          delta: { stop_reason: 'end_turn' },
          usage: { output_tokens: 2_000_000 },
        }),
        anthropic('message_stop', {}),
      ),
    ],
  },
  // An Ollama stream cut off after one line over the cap: no final counts.
  '/api/chat': {
    headers: { 'content-type': 'application/x-ndjson' },
    pieces: [
      encoder.encode(
        `${JSON.stringify({ model: 'llama3.2', message: { role: 'assistant', content: big }, done: false })}\n`,
      ),
    ],
  },
  '/v1/completions': {
    headers: { 'content-type': 'application/json' },
    pieces: [
      encoder.encode(
        JSON.stringify({
          id: 'c2',
          model: 'gpt-4o-mini',
          choices: [{ index: 0, text: 'y'.repeat(4000), finish_reason: 'stop' }],
          usage: { prompt_tokens: 3, completion_tokens: 1000 },
        }),
      ),
    ],
  },
};

let replay: ReplayServer;
beforeAll(async () => {
  replay = await startReplay(ROUTES);
});
afterAll(async () => {
  await replay.close();
});

async function call(path: string, body: Record<string, unknown>, options: MeterOptions = {}) {
  const records: CallRecord[] = [];
  const meter = createMeter({ database: false, onRecord: (r) => records.push(r), ...options });
  const init = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
  try {
    const raw = await bodyBytes(await fetch(`${replay.url}${path}`, init));
    const metered = await bodyBytes(await meter.fetch(`${replay.url}${path}`, init));
    expect(metered.equals(raw), 'the caller gets every byte, the oversized event too').toBe(true);
    await meter.flush();
    expect(records, 'one record').toHaveLength(1);
    return { record: records[0]!, bytes: raw.byteLength };
  } finally {
    await meter.shutdown();
  }
}

const messages = [{ role: 'user', content: 'hi' }];

describe('an event over the parser cap makes the usage estimated, never a silent 0', () => {
  it('SSE through the rewriting forwarder (include_usage asked, not honoured): its bytes are counted', async () => {
    const { record } = await call('/v1/chat/completions', { model: 'm', stream: true, messages });
    expect(record.outcome).toBe('ok');
    expect(record.usage?.source).toBe('estimated');
    expect(record.usage?.unreadBytes, 'the unread event, whole').toBeGreaterThan(big.length);
    expect(record.usage?.outputTokens, 'counted from its size').toBeGreaterThanOrEqual(
      Math.ceil(big.length / 4),
    );
  });

  it('SSE, the final figures read after it: kept, and flagged', async () => {
    const { record } = await call('/v1/messages', {
      model: 'claude-haiku-4-5',
      max_tokens: 10,
      stream: true,
      messages,
    });
    expect(record.outcome).toBe('ok');
    expect(record.usage).toMatchObject({ inputTokens: 10, outputTokens: 2_000_000, source: 'estimated' });
    expect(record.usage?.unreadBytes).toBeGreaterThan(big.length);
  });

  it('an NDJSON line over the cap, in a stream cut short: its bytes are counted', async () => {
    const { record } = await call('/api/chat', { model: 'llama3.2', messages });
    expect(record.errorType).toBe('stream_interrupted');
    expect(record.usage?.source).toBe('estimated');
    expect(record.usage?.unreadBytes).toBeGreaterThan(big.length);
    expect(record.usage?.outputTokens).toBeGreaterThanOrEqual(Math.ceil(big.length / 4));
  });

  it('a JSON body over maxResponseBodyBytes: its bytes are counted', async () => {
    const { record, bytes } = await call(
      '/v1/completions',
      { model: 'gpt-4o-mini', prompt: 'hi' },
      { maxResponseBodyBytes: 1000 },
    );
    expect(record.usage).toMatchObject({ source: 'estimated', unreadBytes: bytes });
    expect(record.usage?.outputTokens).toBeGreaterThanOrEqual(Math.ceil(bytes / 4));
  });
});
