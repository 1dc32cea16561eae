import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createJsonArrayParser } from '../../src/fetch/json-array.js';
import { createNdjsonParser } from '../../src/fetch/ndjson.js';
import { createSseParser, type SseEvent } from '../../src/fetch/sse.js';
import { createSseFramer } from '../../src/fetch/sse-framer.js';
import { cut } from '../helpers/bytes.js';
import { JSON_TOKENS, tokens } from '../helpers/fuzz.js';

const NUM_RUNS = 300;

/** At most this many tokens in a generated body. */
const TOKENS_PER_BODY = 80;

const SSE_BYTES = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  tokens(
    [
      'data:',
      'data: ',
      'event: ',
      'id: ',
      'id',
      'retry: ',
      '12',
      ':',
      ' ',
      'x',
      '\n',
      '\r',
      '\r\n',
      '\n\n',
      '\uFEFF',
      '\u0000',
      'é',
      '日本',
      '👋',
      [0xff],
      [0xe6, 0x97],
      [0xf0, 0x9f],
    ],
    TOKENS_PER_BODY,
  ),
);

const JSON_BYTES = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  tokens([...JSON_TOKENS, 'é', '👋', [0xe6, 0x97], '\uFEFF'], TOKENS_PER_BODY),
);

const POINTS = fc.array(fc.nat(), { maxLength: 12 });
const MAX = fc.constantFrom(undefined, 1, 7, 24, 64);

function sse(chunks: (Uint8Array | string)[], maxEventBytes: number | undefined) {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const parser = createSseParser({
    onEvent: (e) => {
      events.push(e);
      if (e.data.length % 3 === 0) throw new Error('hook');
    },
    onComment: (c) => {
      comments.push(c);
    },
    ...(maxEventBytes === undefined ? {} : { maxEventBytes }),
  });
  for (const c of chunks) parser.feed(c);
  return { events, comments, end: parser.end() };
}

function ndjson(chunks: Uint8Array[], maxLineBytes: number | undefined) {
  const lines: string[] = [];
  const parser = createNdjsonParser({
    onLine: (l) => {
      lines.push(l);
      if (l.length % 3 === 0) throw new Error('hook');
    },
    ...(maxLineBytes === undefined ? {} : { maxLineBytes }),
  });
  for (const c of chunks) parser.feed(c);
  return { lines, end: parser.end() };
}

function jsonArray(chunks: Uint8Array[], maxElementBytes: number | undefined) {
  const elements: string[] = [];
  const parser = createJsonArrayParser({
    onElement: (e) => {
      elements.push(e);
      if (e.length % 3 === 0) throw new Error('hook');
    },
    ...(maxElementBytes === undefined ? {} : { maxElementBytes }),
  });
  for (const c of chunks) parser.feed(c);
  return { elements, end: parser.end() };
}

function framer(chunks: Uint8Array[], maxBlockBytes: number | undefined) {
  const blocks: { bytes: number[]; oversized: boolean }[] = [];
  const pieces: Uint8Array[] = [];
  const f = createSseFramer({
    onBlock: (block, oversized) => {
      pieces.push(block);
      blocks.push({ bytes: Array.from(block), oversized });
      if (block.length % 3 === 0) throw new Error('hook');
    },
    ...(maxBlockBytes === undefined ? {} : { maxBlockBytes }),
  });
  for (const c of chunks) f.feed(c);
  const rest = f.end();
  if (rest) pieces.push(rest);
  const all: number[] = [];
  for (const p of pieces) all.push(...p);
  return { whole: blocks.filter((b) => !b.oversized).map((b) => b.bytes), all, stats: f.stats() };
}

/**
 * The spec read line by line over the whole body, as plainly as it is written: the model the
 * streaming parser must agree with.
 */
function sseByTheSpec(body: Uint8Array): SseEvent[] {
  // TextDecoder's default is the spec's "UTF-8 decode": one leading BOM goes.
  const lines = new TextDecoder().decode(body).split(/\r\n|\r|\n/);
  lines.pop(); // text after the last line end is not a line
  const events: SseEvent[] = [];
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  let retry: number | undefined;
  for (const line of lines) {
    if (line === '') {
      if (data.length > 0)
        events.push({ event, data: data.join('\n'), id, ...(retry === undefined ? {} : { retry }) });
      data = [];
      event = '';
      retry = undefined;
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\u0000')) id = value;
    else if (field === 'retry' && /^[0-9]+$/.test(value)) retry = Number(value);
  }
  return events;
}

describe('parsers under random input', () => {
  it('SSE: agrees with a line-by-line reading of the spec', () => {
    fc.assert(
      fc.property(SSE_BYTES, POINTS, (body, points) => {
        expect(sse(cut(body, points), undefined).events).toEqual(sseByTheSpec(body));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('SSE: any cut gives the events and end state of no cut', () => {
    fc.assert(
      fc.property(SSE_BYTES, POINTS, MAX, (body, points, max) => {
        const once = sse([body], max);
        const cutUp = sse(cut(body, points), max);
        expect(cutUp).toEqual(once);
        // Sizes are of the decoded text: a byte that is not UTF-8 counts as U+FFFD, three bytes.
        expect(once.end.pendingBytes).toBeLessThanOrEqual(3 * body.length);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('SSE: cutting the text instead of the bytes gives the same events', () => {
    fc.assert(
      fc.property(SSE_BYTES, POINTS, (body, points) => {
        const text = new TextDecoder().decode(body);
        const at = [...new Set(points.map((p) => p % (text.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...at].map((start, i) => text.slice(start, at[i] ?? text.length));
        expect(sse(pieces, undefined).events).toEqual(sse([body], undefined).events);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('SSE framer: every byte comes out once, and whole blocks do not depend on the cut', () => {
    fc.assert(
      fc.property(SSE_BYTES, POINTS, MAX, (body, points, max) => {
        const once = framer([body], max);
        const cutUp = framer(cut(body, points), max);
        expect(cutUp.all).toEqual(Array.from(body));
        expect(cutUp.whole).toEqual(once.whole);
        expect(cutUp.stats.blocks).toBe(once.stats.blocks);
        expect(cutUp.stats.oversized).toBe(once.stats.oversized);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('NDJSON: never throws, and any cut gives the lines of no cut', () => {
    fc.assert(
      fc.property(fc.oneof(SSE_BYTES, JSON_BYTES), POINTS, MAX, (body, points, max) => {
        expect(ndjson(cut(body, points), max)).toEqual(ndjson([body], max));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('JSON array: never throws, and any cut gives the elements of no cut', () => {
    fc.assert(
      fc.property(JSON_BYTES, POINTS, MAX, (body, points, max) => {
        const once = jsonArray([body], max);
        expect(jsonArray(cut(body, points), max)).toEqual(once);
        expect(once.end.elements).toBe(once.elements.length);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('chunks that are not bytes are counted, not thrown', () => {
    const junk = [null, undefined, 42, {}, 'text'] as unknown as Uint8Array[];
    const sseParser = createSseParser({ onEvent: () => {} });
    const nd = createNdjsonParser({ onLine: () => {} });
    const arr = createJsonArrayParser({ onElement: () => {} });
    const fr = createSseFramer({ onBlock: () => {} });
    for (const j of junk) {
      expect(() => sseParser.feed(j)).not.toThrow();
      expect(() => nd.feed(j)).not.toThrow();
      expect(() => arr.feed(j)).not.toThrow();
      expect(() => fr.feed(j)).not.toThrow();
    }
    expect(sseParser.end().errors).toBeGreaterThan(0);
    expect(nd.end().errors).toBeGreaterThan(0);
    expect(arr.end().errors).toBeGreaterThan(0);
    expect(() => fr.end()).not.toThrow();
  });
});
