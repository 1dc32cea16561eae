import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createJsonArrayParser, type JsonArrayEndState } from '../../src/fetch/json-array.js';
import { createNdjsonParser, type NdjsonEndState } from '../../src/fetch/ndjson.js';
import { createSseParser, type SseEndState, type SseEvent } from '../../src/fetch/sse.js';
import { createSseFramer } from '../../src/fetch/sse-framer.js';
import { concatBytes, cut } from '../helpers/bytes.js';

/** The events in one framed block, read by the spec parser as a stream of its own. */
function parseSseBlock(block: Uint8Array): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = createSseParser({
    onEvent: (ev) => events.push(ev),
    maxEventBytes: Number.POSITIVE_INFINITY,
  });
  parser.feed(block);
  parser.end();
  return events;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (b: Uint8Array): string => decoder.decode(b);

/** Every way the tests cut a body: whole, in two at each byte, one byte at a time. */
function splits(body: Uint8Array): { name: string; chunks: Uint8Array[] }[] {
  const out = [{ name: 'whole', chunks: [body] }];
  for (let i = 1; i < body.length; i++) {
    out.push({ name: `split at ${i}`, chunks: [body.subarray(0, i), body.subarray(i)] });
  }
  out.push({ name: 'byte by byte', chunks: Array.from(body, (_, i) => body.subarray(i, i + 1)) });
  return out;
}

const LINE_ENDS = [
  { name: 'LF', eol: '\n' },
  { name: 'CRLF', eol: '\r\n' },
  { name: 'CR', eol: '\r' },
];

function withEol(body: string, eol: string): string {
  return body.replace(/\n/g, eol);
}

interface SseRun {
  events: SseEvent[];
  comments: string[];
  end: SseEndState;
}

function runSse(chunks: (Uint8Array | string)[], maxEventBytes?: number): SseRun {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const parser = createSseParser({
    onEvent: (ev) => events.push(ev),
    onComment: (c) => comments.push(c),
    ...(maxEventBytes === undefined ? {} : { maxEventBytes }),
  });
  for (const chunk of chunks) parser.feed(chunk);
  return { events, comments, end: parser.end() };
}

/** An SSE body from events, written with LF; the tests swap the line ends. */
interface RecordedEvent {
  event?: string;
  data: string;
}

function sseBody(events: RecordedEvent[]): string {
  return events
    .map((e) => (e.event === undefined ? '' : `event: ${e.event}\n`) + `data: ${e.data}\n\n`)
    .join('');
}

const chunk = (content: string, finish: string | null = null): string =>
  JSON.stringify({
    id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
    object: 'chat.completion.chunk',
    created: 1741569952,
    model: 'gpt-4o-2024-08-06',
    system_fingerprint: 'fp_eb9dce56a8',
    choices: [{ index: 0, delta: content === '' ? {} : { content }, logprobs: null, finish_reason: finish }],
    usage: null,
  });

const OPENAI_EVENTS: RecordedEvent[] = [
  { data: chunk('') },
  { data: chunk('Café ') },
  { data: chunk('日本') },
  { data: chunk(' 👋') },
  { data: chunk('', 'stop') },
  {
    data: JSON.stringify({
      id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
      object: 'chat.completion.chunk',
      choices: [],
      usage: { prompt_tokens: 19, completion_tokens: 10, total_tokens: 29 },
    }),
  },
  { data: '[DONE]' },
];

const ANTHROPIC_EVENTS: RecordedEvent[] = [
  {
    event: 'message_start',
    data: JSON.stringify({
      type: 'message_start',
      message: {
        id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
        type: 'message',
        role: 'assistant',
        content: [],
        model: 'claude-sonnet-4-5',
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 25, output_tokens: 1, cache_read_input_tokens: 0 },
      },
    }),
  },
  {
    event: 'content_block_start',
    data: '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
  },
  { event: 'ping', data: '{"type": "ping"}' },
  {
    event: 'content_block_delta',
    data: '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo 日本"}}',
  },
  {
    event: 'content_block_delta',
    data: '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" 👋!"}}',
  },
  { event: 'content_block_stop', data: '{"type":"content_block_stop","index":0}' },
  {
    event: 'message_delta',
    data: '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}',
  },
  { event: 'message_stop', data: '{"type":"message_stop"}' },
];

const RECORDED = [
  { name: 'OpenAI chat', events: OPENAI_EVENTS },
  { name: 'Anthropic messages', events: ANTHROPIC_EVENTS },
];

describe('createSseParser: recorded streams', () => {
  for (const fixture of RECORDED) {
    const expected: SseEvent[] = fixture.events.map((e) => ({
      event: e.event ?? '',
      data: e.data,
      id: undefined,
    }));
    for (const { name, eol } of LINE_ENDS) {
      it(`${fixture.name} with ${name} line ends, cut anywhere`, () => {
        const body = bytes(withEol(sseBody(fixture.events), eol));
        for (const split of splits(body)) {
          const run = runSse(split.chunks);
          expect(run.events, split.name).toEqual(expected);
          expect(run.end, split.name).toEqual({
            pendingBytes: 0,
            dispatched: expected.length,
            errors: 0,
            oversized: 0,
          });
        }
      });
    }
  }
});

const ev = (data: string, more: Partial<SseEvent> = {}): SseEvent => ({
  event: '',
  data,
  id: undefined,
  ...more,
});

describe('createSseParser: the spec, case by case', () => {
  const cases: {
    name: string;
    input: string | Uint8Array;
    events: SseEvent[];
    comments?: string[];
    pendingBytes?: number;
  }[] = [
    {
      name: 'comment lines',
      input: ': hello\n:\n:  two\ndata: a\n\n',
      events: [ev('a')],
      comments: ['hello', '', ' two'],
    },
    {
      name: 'a comment alone dispatches nothing',
      input: ': keep-alive\n\n',
      events: [],
      comments: ['keep-alive'],
    },
    { name: 'multi-line data joined with LF', input: 'data: a\ndata:\ndata: b\n\n', events: [ev('a\n\nb')] },
    { name: 'data without space', input: 'data:test\n\ndata: test\n\n', events: [ev('test'), ev('test')] },
    { name: 'only one leading space is removed', input: 'data:  two\n\n', events: [ev(' two')] },
    { name: 'colon in the value', input: 'data: a: b\n\n', events: [ev('a: b')] },
    {
      name: 'a field without colon has an empty value (spec example)',
      input: 'data\n\ndata\ndata\n\ndata:',
      events: [ev(''), ev('\n')],
      pendingBytes: 5,
    },
    {
      name: 'event type, reset after dispatch',
      input: 'event: add\ndata: 1\n\ndata: 2\n\n',
      events: [ev('1', { event: 'add' }), ev('2')],
    },
    {
      name: 'unknown fields are ignored',
      input: 'foo: bar\n data: x\nDATA: y\ndata: z\n\n',
      events: [ev('z')],
    },
    { name: 'no data, no event', input: 'event: ping\n\nretry: 10\n\n\n\n', events: [] },
    { name: 'a leading BOM is stripped', input: '\uFEFFdata: a\n\n', events: [ev('a')] },
    { name: 'only one BOM is stripped', input: '\uFEFF\uFEFFdata: a\n\n', events: [] },
    { name: 'a BOM later is data', input: 'data: \uFEFFa\n\n', events: [ev('\uFEFFa')] },
    {
      name: 'id carries over and can be emptied',
      input: 'id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n',
      events: [ev('a', { id: '7' }), ev('b', { id: '7' }), ev('c', { id: '' })],
    },
    {
      name: 'an id containing NUL is ignored',
      input: 'id: 1\ndata: a\n\nid: 2\u0000x\ndata: b\n\n',
      events: [ev('a', { id: '1' }), ev('b', { id: '1' })],
    },
    {
      name: 'an id without data still sets the buffer',
      input: 'id: 3\n\ndata: a\n\n',
      events: [ev('a', { id: '3' })],
    },
    {
      name: 'retry: digits only',
      input: 'retry: 1500\ndata: a\n\nretry: 1.5\ndata: b\n\nretry: -1\ndata: c\n\nretry:\ndata: d\n\n',
      events: [ev('a', { retry: 1500 }), ev('b'), ev('c'), ev('d')],
    },
    { name: 'mixed line ends', input: 'data: a\r\ndata: b\rdata: c\n\r\n', events: [ev('a\nb\nc')] },
    { name: 'CR CR is two line ends', input: 'data: a\r\r\r\ndata: b\r\n\n', events: [ev('a'), ev('b')] },
    {
      name: 'no blank line at the end: not dispatched',
      input: 'data: a\n\ndata: b\n',
      events: [ev('a')],
      pendingBytes: 8,
    },
    { name: 'cut mid-line', input: 'data: a\n\nevent: x\ndata: b', events: [ev('a')], pendingBytes: 16 },
    { name: 'pending counts bytes, not characters', input: 'data: é👋', events: [], pendingBytes: 12 },
    {
      name: 'a trailing comment is pending too',
      input: 'data: a\n\n: bye\r\n',
      events: [ev('a')],
      comments: ['bye'],
      pendingBytes: 7,
    },
    {
      name: 'invalid UTF-8 becomes U+FFFD',
      input: new Uint8Array([...bytes('data: a'), 0xff, 0xe6, 0x97, ...bytes('\n\n')]),
      events: [ev('a\uFFFD\uFFFD')],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const body = typeof c.input === 'string' ? bytes(c.input) : c.input;
      for (const split of splits(body)) {
        const run = runSse(split.chunks);
        expect(run.events, split.name).toEqual(c.events);
        expect(run.comments, split.name).toEqual(c.comments ?? []);
        expect(run.end.pendingBytes, split.name).toBe(c.pendingBytes ?? 0);
      }
      if (typeof c.input === 'string') {
        expect(runSse([c.input]).events, 'as a string').toEqual(c.events);
      }
    });
  }

  it('a CR ending one chunk and an LF starting the next are one line end', () => {
    const run = runSse(['data: a\r', '\n', 'data: b\r', '\n\r', '\n']);
    expect(run.events).toEqual([ev('a\nb')]);
  });

  it('string and byte chunks mix', () => {
    const run = runSse(['data: ', bytes('日本').subarray(0, 2), '\n\n']);
    expect(run.events).toEqual([ev('\uFFFD')]);
  });

  it('a throwing onEvent is counted and parsing goes on', () => {
    const seen: string[] = [];
    const parser = createSseParser({
      onEvent: (e) => {
        seen.push(e.data);
        if (e.data === 'a') throw new Error('boom');
      },
      onComment: () => {
        throw new Error('boom');
      },
    });
    parser.feed(bytes('data: a\n\n: x\ndata: b\n\n'));
    expect(parser.end()).toEqual({ pendingBytes: 0, dispatched: 2, errors: 2, oversized: 0 });
    expect(seen).toEqual(['a', 'b']);
  });

  it('an event over maxEventBytes is dropped, the next one is kept', () => {
    const big = 'x'.repeat(100);
    const body = bytes(`data: ${big}\ndata: ${big}\n\ndata: ok\n\ndata: ${big}${big}`);
    for (const split of splits(body)) {
      const run = runSse(split.chunks, 150);
      expect(run.events, split.name).toEqual([ev('ok')]);
      expect(run.end, split.name).toEqual({ pendingBytes: 206, dispatched: 1, errors: 0, oversized: 2 });
    }
  });

  it('an event over maxEventBytes reports all its bytes once it ends, a cut-off one at the end', () => {
    const big = 'x'.repeat(100);
    // 2 × (6 + 100 + 1) + 1 for the first event, through its blank line; the last is cut off.
    const body = bytes(`data: ${big}\ndata: ${big}\n\ndata: ok\n\ndata: ${big}${big}`);
    for (const split of splits(body)) {
      const dropped: number[] = [];
      const parser = createSseParser({
        onEvent: () => {},
        maxEventBytes: 150,
        onOversized: (n) => dropped.push(n),
      });
      for (const c of split.chunks) parser.feed(c);
      parser.end();
      expect(dropped, split.name).toEqual([215, 206]);
    }
  });

  it('a bad chunk is counted, not thrown', () => {
    const parser = createSseParser({ onEvent: () => {} });
    parser.feed(42 as unknown as Uint8Array);
    parser.feed(bytes('data: a\n\n'));
    expect(parser.end()).toEqual({ pendingBytes: 0, dispatched: 1, errors: 1, oversized: 0 });
  });

  it('rejects a bad maxEventBytes where it enters', () => {
    expect(() => createSseParser({ onEvent: () => {}, maxEventBytes: 0 })).toThrow(
      'Expected `maxEventBytes` to be a positive number.',
    );
  });
});

interface FramerRun {
  blocks: string[];
  oversized: boolean[];
  rest: Uint8Array | null;
  all: Uint8Array[];
}

function runFramer(chunks: Uint8Array[], maxBlockBytes?: number): FramerRun {
  const run: FramerRun = { blocks: [], oversized: [], rest: null, all: [] };
  const framer = createSseFramer({
    onBlock: (block, oversized) => {
      run.all.push(block);
      run.blocks.push(text(block));
      run.oversized.push(oversized);
    },
    ...(maxBlockBytes === undefined ? {} : { maxBlockBytes }),
  });
  for (const c of chunks) framer.feed(c);
  run.rest = framer.end();
  if (run.rest) run.all.push(run.rest);
  return run;
}

/** What the streaming parser sees, rebuilt from blocks: the last event ID buffer spans blocks. */
function eventsFromBlocks(blocks: Uint8Array[]): SseEvent[] {
  const out: SseEvent[] = [];
  let lastId: string | undefined;
  for (const block of blocks) {
    const events = parseSseBlock(block);
    for (const e of events) {
      if (e.id === undefined) e.id = lastId;
      lastId = e.id;
      out.push(e);
    }
    // An id line in a block without data still sets the buffer: one more event reads it out.
    const [probe] = parseSseBlock(concatBytes([block, bytes('data\n\n')]));
    if (probe?.id !== undefined) lastId = probe.id;
  }
  return out;
}

describe('createSseFramer', () => {
  const cases: { name: string; input: string; blocks: string[]; rest: string | null }[] = [
    { name: 'LF', input: 'data: a\n\ndata: b\n\n', blocks: ['data: a\n\n', 'data: b\n\n'], rest: null },
    { name: 'CRLF, cut off', input: 'data: a\r\n\r\ndata: b', blocks: ['data: a\r\n\r\n'], rest: 'data: b' },
    {
      name: 'CR CR, then CRLF',
      input: 'data: a\r\r\ndata: b\r\r',
      blocks: ['data: a\r\r\n', 'data: b\r\r'],
      rest: null,
    },
    {
      name: 'LF then CRLF',
      input: 'event: x\ndata: a\n\r\nid: 1',
      blocks: ['event: x\ndata: a\n\r\n'],
      rest: 'id: 1',
    },
    { name: 'CRLF then LF', input: 'data: a\r\n\n', blocks: ['data: a\r\n\n'], rest: null },
    {
      name: 'extra blank lines are blocks of their own',
      input: '\n\r\ndata: a\n\n\n',
      blocks: ['\n', '\r\n', 'data: a\n\n', '\n'],
      rest: null,
    },
    {
      name: 'comments stay in their block',
      input: ': ping\n\n: x\ndata: a\n\n',
      blocks: [': ping\n\n', ': x\ndata: a\n\n'],
      rest: null,
    },
    { name: 'nothing', input: '', blocks: [], rest: null },
    { name: 'no line end', input: 'data: a', blocks: [], rest: 'data: a' },
    { name: 'one line end', input: 'data: a\r', blocks: [], rest: 'data: a\r' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const split of splits(bytes(c.input))) {
        const run = runFramer(split.chunks);
        expect(run.blocks, split.name).toEqual(c.blocks);
        expect(run.rest === null ? null : text(run.rest), split.name).toBe(c.rest);
      }
    });
  }

  for (const fixture of RECORDED) {
    for (const { name, eol } of LINE_ENDS) {
      it(`${fixture.name} with ${name} line ends: one block per event, cut anywhere`, () => {
        const body = bytes(withEol(sseBody(fixture.events), eol));
        const whole = runFramer([body]);
        expect(whole.blocks).toHaveLength(fixture.events.length);
        expect(whole.blocks.flatMap((b) => parseSseBlock(bytes(b))).map((e) => e.data)).toEqual(
          fixture.events.map((e) => e.data),
        );
        for (const split of splits(body)) {
          const run = runFramer(split.chunks);
          expect(run.blocks, split.name).toEqual(whole.blocks);
          expect(run.rest, split.name).toBeNull();
        }
      });
    }
  }

  const sseish = fc
    .array(
      fc.constantFrom(
        'data:',
        'data: ',
        'event: e',
        'id: 1',
        'id',
        'retry: 5',
        ':',
        ' ',
        'x',
        'é',
        '日',
        '👋',
      ),
      { maxLength: 6 },
    )
    .map((parts) => parts.join(''));
  const sseStream = fc
    .array(fc.tuple(sseish, fc.constantFrom('\n', '\r', '\r\n')), { maxLength: 30 })
    .map((lines) => bytes(lines.map(([l, eol]) => l + eol).join('')));

  it('blocks and the rest add up to the input, however it is cut', () => {
    fc.assert(
      fc.property(sseStream, fc.array(fc.nat(), { maxLength: 8 }), (body, points) => {
        const run = runFramer(cut(body, points));
        expect(concatBytes(run.all)).toEqual(body);
      }),
      { numRuns: 300 },
    );
  });

  it('blocks read alone give the events the streaming parser gives', () => {
    fc.assert(
      fc.property(sseStream, fc.array(fc.nat(), { maxLength: 8 }), (body, points) => {
        const run = runFramer(cut(body, points));
        expect(run.oversized.every((o) => !o)).toBe(true);
        const blocks = run.all.slice(0, run.blocks.length);
        expect(eventsFromBlocks(blocks)).toEqual(runSse([body]).events);
        expect(runFramer([body]).blocks).toEqual(run.blocks);
      }),
      { numRuns: 300 },
    );
  });

  it('an event over maxBlockBytes goes out in pieces marked oversized', () => {
    const body = bytes(`data: a\n\ndata: ${'x'.repeat(40)}\n\ndata: b\n\ndata: ${'y'.repeat(40)}`);
    for (const split of splits(body)) {
      const run = runFramer(split.chunks, 20);
      expect(concatBytes(run.all), split.name).toEqual(body);
      const whole = run.blocks.filter((_, i) => !run.oversized[i]);
      expect(whole, split.name).toEqual(['data: a\n\n', 'data: b\n\n']);
    }
  });

  it('an unfinished event goes out as soon as it passes maxBlockBytes, not at its end', () => {
    const got: { block: string; oversized: boolean }[] = [];
    const framer = createSseFramer({
      onBlock: (b, oversized) => got.push({ block: text(b), oversized }),
      maxBlockBytes: 20,
    });
    framer.feed(bytes('data: 9876543210abcd'));
    expect(got, 'at the cap').toEqual([]);
    framer.feed(bytes('e'));
    expect(got, 'past the cap').toEqual([{ block: 'data: 9876543210abcde', oversized: true }]);
    framer.feed(bytes('f\n\ndata: a\n\n'));
    expect(framer.end()).toBeNull();
    expect(got.slice(1)).toEqual([
      { block: 'f\n\n', oversized: true },
      { block: 'data: a\n\n', oversized: false },
    ]);
    expect(framer.stats()).toEqual({ blocks: 1, oversized: 1, errors: 0 });
  });

  it('a throwing onBlock is counted and framing goes on', () => {
    const got: string[] = [];
    const framer = createSseFramer({
      onBlock: (b) => {
        got.push(text(b));
        throw new Error('boom');
      },
    });
    framer.feed(bytes('data: a\n\ndata: b\n\n'));
    expect(framer.end()).toBeNull();
    expect(got).toEqual(['data: a\n\n', 'data: b\n\n']);
    expect(framer.stats()).toEqual({ blocks: 2, oversized: 0, errors: 2 });
  });
});

interface NdjsonRun {
  lines: string[];
  end: NdjsonEndState;
}

function runNdjson(chunks: Uint8Array[], maxLineBytes?: number): NdjsonRun {
  const lines: string[] = [];
  const parser = createNdjsonParser({
    onLine: (l) => lines.push(l),
    ...(maxLineBytes === undefined ? {} : { maxLineBytes }),
  });
  for (const c of chunks) parser.feed(c);
  return { lines, end: parser.end() };
}

const OLLAMA_LINES = [
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.000Z","message":{"role":"assistant","content":"Café"},"done":false}',
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.100Z","message":{"role":"assistant","content":" 日本 👋"},"done":false}',
  '{"model":"llama3.2","created_at":"2025-01-01T00:00:00.200Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"prompt_eval_count":26,"eval_count":8}',
];

describe('createNdjsonParser', () => {
  const cases: { name: string; input: string; lines: string[]; pendingBytes: number }[] = [
    {
      name: 'Ollama chat stream',
      input: OLLAMA_LINES.map((l) => l + '\n').join(''),
      lines: OLLAMA_LINES,
      pendingBytes: 0,
    },
    {
      name: 'CRLF',
      input: OLLAMA_LINES.map((l) => l + '\r\n').join(''),
      lines: OLLAMA_LINES,
      pendingBytes: 0,
    },
    {
      name: 'blank lines are skipped',
      input: '\n{"a":1}\n\r\n  \n{"b":2}\n\n',
      lines: ['{"a":1}', '{"b":2}'],
      pendingBytes: 0,
    },
    {
      name: 'a last line without LF is delivered',
      input: '{"a":1}\n{"b":"é"}',
      lines: ['{"a":1}', '{"b":"é"}'],
      pendingBytes: 10,
    },
    {
      name: 'a BOM opening the body is dropped',
      input: '\uFEFF{"a":1}\n',
      lines: ['{"a":1}'],
      pendingBytes: 0,
    },
    { name: 'lines are given raw', input: 'not json\n', lines: ['not json'], pendingBytes: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const split of splits(bytes(c.input))) {
        const run = runNdjson(split.chunks);
        expect(run.lines, split.name).toEqual(c.lines);
        expect(run.end, split.name).toEqual({
          pendingBytes: c.pendingBytes,
          lines: c.lines.length,
          errors: 0,
          oversized: 0,
        });
      }
    });
  }

  it('a line over maxLineBytes is dropped', () => {
    const body = bytes(`{"a":1}\n"${'x'.repeat(50)}"\n{"b":2}\n"${'y'.repeat(50)}"`);
    for (const split of splits(body)) {
      const run = runNdjson(split.chunks, 20);
      expect(run.lines, split.name).toEqual(['{"a":1}', '{"b":2}']);
      expect(run.end, split.name).toEqual({ pendingBytes: 52, lines: 2, errors: 0, oversized: 2 });
    }
  });

  it('a line over maxLineBytes reports all its bytes, a last one without LF too', () => {
    const body = bytes(`{"a":1}\n"${'x'.repeat(50)}"\n{"b":2}\n"${'y'.repeat(50)}"`);
    for (const split of splits(body)) {
      const dropped: number[] = [];
      const parser = createNdjsonParser({
        onLine: () => {},
        maxLineBytes: 20,
        onOversized: (n) => dropped.push(n),
      });
      for (const c of split.chunks) parser.feed(c);
      parser.end();
      expect(dropped, split.name).toEqual([52, 52]);
    }
  });

  it('a throwing onLine is counted and parsing goes on', () => {
    const parser = createNdjsonParser({
      onLine: () => {
        throw new Error('boom');
      },
    });
    parser.feed(bytes('1\n2\n'));
    expect(parser.end()).toEqual({ pendingBytes: 0, lines: 2, errors: 2, oversized: 0 });
  });

  it('random JSON values, one a line, cut anywhere', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 3 }), { maxLength: 8 }),
        fc.constantFrom('\n', '\r\n'),
        fc.array(fc.nat(), { maxLength: 8 }),
        (values, eol, points) => {
          const body = bytes(values.map((v) => JSON.stringify(v) + eol).join(''));
          const run = runNdjson(cut(body, points));
          expect(run.lines.map((l) => JSON.parse(l))).toEqual(
            values.map((v) => JSON.parse(JSON.stringify(v))),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

interface JsonArrayRun {
  elements: string[];
  end: JsonArrayEndState;
}

function runJsonArray(chunks: Uint8Array[], maxElementBytes?: number): JsonArrayRun {
  const elements: string[] = [];
  const parser = createJsonArrayParser({
    onElement: (e) => elements.push(e),
    ...(maxElementBytes === undefined ? {} : { maxElementBytes }),
  });
  for (const c of chunks) parser.feed(c);
  return { elements, end: parser.end() };
}

const GEMINI_ELEMENTS = [
  '{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {\n            "text": "Café 日本"\n          }\n        ],\n        "role": "model"\n      }\n    }\n  ],\n  "usageMetadata": {\n    "promptTokenCount": 9,\n    "totalTokenCount": 9\n  },\n  "modelVersion": "gemini-2.0-flash"\n}',
  '{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {\n            "text": " 👋 \\"quoted\\" \\\\ ]}"\n          }\n        ],\n        "role": "model"\n      },\n      "finishReason": "STOP"\n    }\n  ],\n  "usageMetadata": {\n    "promptTokenCount": 9,\n    "candidatesTokenCount": 12,\n    "totalTokenCount": 21\n  },\n  "modelVersion": "gemini-2.0-flash"\n}',
];

describe('createJsonArrayParser', () => {
  const cases: {
    name: string;
    input: string;
    elements: string[];
    complete: boolean;
    errors?: number;
    pendingBytes?: number;
  }[] = [
    {
      name: 'Gemini stream',
      input: `[${GEMINI_ELEMENTS.join('\r\n,\r\n')}]`,
      elements: GEMINI_ELEMENTS,
      complete: true,
    },
    { name: 'empty array', input: ' [ \r\n ] ', elements: [], complete: true },
    {
      name: 'scalars',
      input: '[1,-2.5e3 , true,null,"a,]\\"}",[],{}]',
      elements: ['1', '-2.5e3', 'true', 'null', '"a,]\\"}"', '[]', '{}'],
      complete: true,
    },
    {
      name: 'nested',
      input: '[[1,[2,{"a":[3]}]],{"b":{"c":"]"}}]',
      elements: ['[1,[2,{"a":[3]}]]', '{"b":{"c":"]"}}'],
      complete: true,
    },
    {
      name: 'escaped backslash before a quote',
      input: '["\\\\",{"k":"\\\\"}]',
      elements: ['"\\\\"', '{"k":"\\\\"}'],
      complete: true,
    },
    { name: 'a BOM is skipped', input: '\uFEFF[1]', elements: ['1'], complete: true },
    {
      name: 'cut off inside an element',
      input: '[{"a":1},{"b":',
      elements: ['{"a":1}'],
      complete: false,
      pendingBytes: 5,
    },
    { name: 'cut off after a scalar', input: '[1,23', elements: ['1'], complete: false, pendingBytes: 2 },
    { name: 'junk before the array', input: ")]}'\n[1]", elements: ['1'], complete: true, errors: 1 },
    {
      name: 'an object instead of an array',
      input: '{"error":{"code":400,"details":[1]}}',
      elements: ['{"error":{"code":400,"details":[1]}}'],
      complete: false,
      errors: 1,
    },
    { name: 'trailing comma', input: '[1,]', elements: ['1'], complete: true, errors: 1 },
    { name: 'double comma', input: '[1,,2]', elements: ['1', '2'], complete: true, errors: 1 },
    {
      name: 'missing comma',
      input: '[{"a":1} {"b":2}]',
      elements: ['{"a":1}', '{"b":2}'],
      complete: true,
      errors: 1,
    },
    { name: 'junk after the array', input: '[1] x y', elements: ['1'], complete: true, errors: 1 },
    { name: 'a stray closer', input: '[{"a":1}}]', elements: ['{"a":1}'], complete: true, errors: 1 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const split of splits(bytes(c.input))) {
        const run = runJsonArray(split.chunks);
        expect(run.elements, split.name).toEqual(c.elements);
        expect(run.end, split.name).toEqual({
          complete: c.complete,
          pendingBytes: c.pendingBytes ?? 0,
          elements: c.elements.length,
          errors: c.errors ?? 0,
          oversized: 0,
        });
      }
    });
  }

  it('an element over maxElementBytes is dropped', () => {
    const body = bytes(`[1,"${'x'.repeat(50)}",{"a":[${'2,'.repeat(30)}3]},4]`);
    for (const split of splits(body)) {
      const run = runJsonArray(split.chunks, 20);
      expect(run.elements, split.name).toEqual(['1', '4']);
      expect(run.end, split.name).toMatchObject({ complete: true, errors: 0, oversized: 2 });
    }
  });

  it('an element over maxElementBytes reports all its bytes, a cut-off one at the end', () => {
    const body = bytes(`[1,"${'x'.repeat(50)}",{"a":[${'2,'.repeat(30)}3]},"${'z'.repeat(40)}`);
    for (const split of splits(body)) {
      const dropped: number[] = [];
      const parser = createJsonArrayParser({
        onElement: () => {},
        maxElementBytes: 20,
        onOversized: (n) => dropped.push(n),
      });
      for (const c of split.chunks) parser.feed(c);
      parser.end();
      expect(dropped, split.name).toEqual([52, 69, 41]);
    }
  });

  it('a throwing onElement is counted and parsing goes on', () => {
    const parser = createJsonArrayParser({
      onElement: () => {
        throw new Error('boom');
      },
    });
    parser.feed(bytes('[1,2]'));
    expect(parser.end()).toMatchObject({ complete: true, elements: 2, errors: 2 });
  });

  const ws = fc.constantFrom('', ' ', '\r\n', '\n\t ');
  it('random arrays of JSON values, any whitespace, cut anywhere', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 3 }), ws, ws, fc.constantFrom(0, 2)),
        ),
        ws,
        fc.array(fc.nat(), { maxLength: 8 }),
        (items, outer, points) => {
          const body = bytes(
            outer +
              '[' +
              outer +
              items
                .map(([v, before, after, indent]) => before + JSON.stringify(v, null, indent) + after)
                .join(',') +
              ']' +
              outer,
          );
          const run = runJsonArray(cut(body, points));
          expect(run.elements.map((e) => JSON.parse(e))).toEqual(
            items.map(([v]) => JSON.parse(JSON.stringify(v))),
          );
          expect(run.end).toMatchObject({ complete: true, pendingBytes: 0, errors: 0 });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('truncated input never throws and never completes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        (values, at) => {
          const body = bytes(JSON.stringify(values));
          const cutAt = at % body.length;
          const run = runJsonArray([body.subarray(0, cutAt)]);
          expect(run.end.complete).toBe(false);
          for (const e of run.elements) expect(() => JSON.parse(e)).not.toThrow();
        },
      ),
      { numRuns: 300 },
    );
  });
});
