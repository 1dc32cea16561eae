/**
 * src/fetch/detect.ts: the one path by which the meter's wrapper and the resilience wrappers
 * decide what an LLM call is (same adapters, same body cap, same isLlmCall rule).
 */
import { describe, expect, it } from 'vitest';
import { detectCall, requestInfoOf } from '../../src/fetch/detect.js';
import { DEFAULT_MAX_REQUEST_BODY_BYTES, type FetchInput } from '../../src/fetch/request.js';
import { openaiAdapter } from '../../src/providers/openai.js';
import { DEFAULT_ADAPTERS } from '../../src/providers/registry.js';
import type { ProviderAdapter } from '../../src/providers/types.js';
import { callFacts } from '../../src/resilience/call.js';

const CHAT = 'https://api.openai.com/v1/chat/completions';
const chat = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
const post = (body?: BodyInit): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body,
});

interface Case {
  name: string;
  input: FetchInput;
  init?: RequestInit;
  maxBytes?: number;
  /** null: not an LLM call. */
  expected: { model: string | null; parsed: boolean; read: string; maxTokens?: number | null } | null;
}

const cases: Case[] = [
  {
    name: 'a JSON chat call',
    input: CHAT,
    init: post(chat),
    expected: { model: 'gpt-4o', parsed: true, read: 'json', maxTokens: 5 },
  },
  {
    name: 'the same body as bytes',
    input: new URL(CHAT),
    init: post(new TextEncoder().encode(chat)),
    expected: { model: 'gpt-4o', parsed: true, read: 'json', maxTokens: 5 },
  },
  { name: 'a GET', input: CHAT, init: { method: 'GET' }, expected: null },
  {
    name: 'a URL no adapter knows',
    input: 'https://example.com/v1/things',
    init: post(chat),
    expected: null,
  },
  { name: 'not a URL', input: 'not a url', init: post(chat), expected: null },
  {
    name: 'JSON naming no model: an app route sharing the path',
    input: CHAT,
    init: post(JSON.stringify({ messages: [] })),
    expected: null,
  },
  {
    name: 'a body over the cap is not read, and still metered',
    input: CHAT,
    init: post(chat),
    maxBytes: 16,
    expected: { model: null, parsed: false, read: 'too_large', maxTokens: null },
  },
  {
    name: 'a non-JSON body on a path only LLM APIs use',
    input: CHAT,
    init: post('hello'),
    expected: { model: null, parsed: false, read: 'not_json' },
  },
  {
    name: "a non-JSON body on /api/chat of a host not known to be Ollama's",
    input: 'https://app.example.com/api/chat',
    init: post('hello'),
    expected: null,
  },
  {
    name: "a Request's body is not read here",
    input: new Request(CHAT, { method: 'POST', body: chat }),
    expected: { model: null, parsed: false, read: 'stream' },
  },
];

describe('detectCall', () => {
  it.each(cases)('$name', ({ input, init, maxBytes, expected }) => {
    const call = detectCall(input, init, DEFAULT_ADAPTERS, maxBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES);
    if (expected === null) {
      expect(call, 'not an LLM call').toBeNull();
      return;
    }
    expect(call, 'an LLM call').not.toBeNull();
    expect(call!.info.model, 'model').toBe(expected.model);
    expect(call!.info.parsed, 'parsed').toBe(expected.parsed);
    expect(call!.read.kind === 'json' ? 'json' : call!.read.reason, 'body read').toBe(expected.read);
    if (expected.maxTokens !== undefined) expect(call!.info.maxTokens, 'maxTokens').toBe(expected.maxTokens);
  });

  it('an adapter that fails on the body: reported, and the call is taken as unread', () => {
    const failing: ProviderAdapter = {
      ...openaiAdapter,
      detect: (url, method, headers) => {
        const detection = openaiAdapter.detect(url, method, headers);
        return detection && { ...detection, adapter: failing };
      },
      parseRequest: () => {
        throw new Error('adapter bug');
      },
    };
    const detection = failing.detect(new URL(CHAT), 'POST', new Headers())!;
    const errors: unknown[] = [];
    const info = requestInfoOf(
      detection,
      { kind: 'json', text: chat, value: JSON.parse(chat), fromInit: true },
      (error) => errors.push(error),
    );
    expect(info?.parsed).toBe(false);
    expect(errors).toHaveLength(1);
    expect(detectCall(CHAT, post(chat), [failing], DEFAULT_MAX_REQUEST_BODY_BYTES)?.info.parsed).toBe(false);
  });

  it('never throws: a throwing adapter is not an LLM call', () => {
    const throwing: ProviderAdapter = {
      ...openaiAdapter,
      detect: (() => {
        throw new Error('detect bug');
      }) as ProviderAdapter['detect'],
    };
    expect(detectCall(CHAT, post(chat), [throwing], DEFAULT_MAX_REQUEST_BODY_BYTES)).toBeNull();
  });
});

describe('the resilience wrappers read calls by the same path', () => {
  it.each(cases.filter((c) => c.maxBytes === undefined))('$name', ({ input, init, expected }) => {
    const facts = callFacts(input, init);
    if (expected === null) {
      expect(facts).toBeNull();
      return;
    }
    expect(facts?.model ?? null).toBe(expected.model);
    expect(facts?.info.parsed).toBe(expected.parsed);
    expect(facts?.body !== null).toBe(expected.read === 'json');
  });

  it("a body over the meter's default cap is not parsed by them either", () => {
    const padding = 'x'.repeat(DEFAULT_MAX_REQUEST_BODY_BYTES);
    const big = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: padding }] });
    const facts = callFacts(CHAT, post(big));
    expect(facts, 'still an LLM call').not.toBeNull();
    expect(facts!.body, 'not parsed').toBeNull();
    expect(facts!.info.parsed).toBe(false);
  });
});
