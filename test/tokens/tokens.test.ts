import fc from 'fast-check';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import {
  type BodyShape,
  countOutputText,
  countTokens,
  countTokensAsync,
  type EncodingName,
  encodingForModel,
  estimateChatInput,
  loadEncoding,
  MAX_RUN_CHARS,
  OPENAI_IMAGE_TOKENS,
} from '../../src/tokens/index.js';
import { pieces } from '../../src/tokens/split.js';

const reference = { o200k_base: o200k, cl100k_base: cl100k } as const;

describe('encodingForModel', () => {
  const cases: [name: string, model: string | null, encoding: EncodingName, exact: boolean][] = [
    ['gpt-4o', 'gpt-4o', 'o200k_base', true],
    ['gpt-4o-mini dated', 'gpt-4o-mini-2024-07-18', 'o200k_base', true],
    ['gpt-4.1', 'gpt-4.1-nano', 'o200k_base', true],
    ['gpt-4.5', 'gpt-4.5-preview', 'o200k_base', true],
    ['gpt-5', 'gpt-5-mini', 'o200k_base', true],
    ['o1', 'o1', 'o200k_base', true],
    ['o3-mini', 'o3-mini-2025-01-31', 'o200k_base', true],
    ['o4-mini', 'o4-mini', 'o200k_base', true],
    ['chatgpt', 'chatgpt-4o-latest', 'o200k_base', true],
    ['gpt-oss via a host prefix', 'openai/gpt-oss-120b', 'o200k_base', true],
    ['Bedrock id', 'us.openai.gpt-oss-20b-1:0', 'o200k_base', true],
    ['prefixed', 'openai/gpt-4o-mini', 'o200k_base', true],
    ['fine-tuned', 'ft:gpt-4o-mini-2024-07-18:acme::abc123', 'o200k_base', true],
    ['Azure deployment', 'prod-gpt4o-eastus', 'o200k_base', true],
    ['gpt-4', 'gpt-4', 'cl100k_base', true],
    ['gpt-4 dated', 'gpt-4-0613', 'cl100k_base', true],
    ['gpt-4-turbo', 'gpt-4-turbo-2024-04-09', 'cl100k_base', true],
    ['gpt-3.5', 'gpt-3.5-turbo', 'cl100k_base', true],
    ['Azure gpt-35', 'gpt-35-turbo', 'cl100k_base', true],
    ['Azure deployment of gpt-35', 'my-gpt-35-turbo-deployment', 'cl100k_base', true],
    ['embedding-3', 'text-embedding-3-small', 'cl100k_base', true],
    ['ada-002', 'text-embedding-ada-002', 'cl100k_base', true],
    ['Claude', 'claude-3-5-sonnet-20241022', 'o200k_base', false],
    ['Gemini', 'models/gemini-2.0-flash', 'o200k_base', false],
    ['Llama', 'llama-3.3-70b-versatile', 'o200k_base', false],
    ['Mistral', 'mistral-large-latest', 'o200k_base', false],
    ['not the o-series', 'o1x', 'o200k_base', false],
    ['no model', null, 'o200k_base', false],
  ];
  it.each(cases)('%s', (_name, model, encoding, exact) => {
    expect(encodingForModel(model), String(model)).toEqual({ encoding, exact });
  });
});

describe('loadEncoding and countTokens', () => {
  it('loads each encoding once', async () => {
    const [a, b] = await Promise.all([loadEncoding('o200k_base'), loadEncoding('o200k_base')]);
    expect(a).toBe(b);
  });

  // Token ids from OpenAI's cookbook ("How to count tokens with tiktoken") and gpt-tokenizer.
  const known: [name: string, encoding: EncodingName, text: string, ids: number[]][] = [
    ['cookbook o200k', 'o200k_base', 'tiktoken is great!', [83, 8251, 2488, 382, 2212, 0]],
    ['cookbook cl100k', 'cl100k_base', 'tiktoken is great!', [83, 1609, 5963, 374, 2294, 0]],
    ['hello world o200k', 'o200k_base', 'hello world', [24912, 2375]],
    ['hello world cl100k', 'cl100k_base', 'hello world', [15339, 1917]],
  ];
  it.each(known)('%s', async (_name, encoding, text, ids) => {
    const encoder = await loadEncoding(encoding);
    expect(encoder.encode(text), 'ids').toEqual(ids);
    expect(countTokens(text, encoder), 'bounded count').toEqual({ tokens: ids.length, truncated: false });
  });

  const texts: [name: string, text: string][] = [
    ['empty', ''],
    ['prose', 'The quick brown fox jumps over the lazy dog. '.repeat(40)],
    ['code', 'function add(a, b) {\n  return a + b; // sum\n}\n'.repeat(30)],
    [
      'JSON without spaces',
      JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, ok: true })) }),
    ],
    ['CJK with punctuation', '所有编译器选项。“{0}”修饰符不能与导入声明一起使用。'.repeat(40)],
    ['emoji and ZWJ sequences', '👨‍👩‍👧‍👦 ok 👍🏽 🇯🇵 '.repeat(50)],
    ['combining marks', 'cafe\u0301 nai\u0308ve '.repeat(60)],
    ['digits', '1234567890'.repeat(60)],
  ];
  it.each(texts)('%s: the bounded count equals gpt-tokenizer, both encodings', async (_name, text) => {
    for (const name of ['o200k_base', 'cl100k_base'] as const) {
      const encoder = await loadEncoding(name);
      expect(countTokens(text, encoder).tokens, name).toBe(reference[name].countTokens(text));
    }
  });

  it('counts special-token text as plain text instead of throwing', async () => {
    const encoder = await loadEncoding('o200k_base');
    const text = 'say <|endoftext|> now';
    expect(countTokens(text, encoder).tokens).toBe(o200k.countTokens(text, { disallowedSpecial: new Set() }));
    expect(countTokens(text, encoder).tokens).toBeGreaterThan(4);
  });
});

describe('hostile input', () => {
  it('counts 200,000 × "a" (one run, forced cuts) with the right figure and flags', async () => {
    const text = 'a'.repeat(200_000);
    // 8 × "a" is one token in both encodings and 256 is a multiple of 8, so the cuts lose nothing.
    expect(await countTokensAsync(text, 'gpt-4o')).toEqual({ tokens: 25_000, exact: true, truncated: false });
    expect(await countTokensAsync(text, 'claude-3-5-sonnet')).toEqual({
      tokens: 25_000,
      exact: false,
      truncated: false,
    });
  });

  it('cuts long runs of spaces, CJK and emoji into short pieces', () => {
    for (const text of [' '.repeat(10_000), '中'.repeat(10_000), '👍🏽'.repeat(5_000)]) {
      const stats = { forcedCuts: 0 };
      const all = [...pieces(text, stats)];
      expect(stats.forcedCuts, 'forced cuts').toBeGreaterThan(0);
      for (const p of all) expect(p.end - p.start, 'piece length').toBeLessThanOrEqual(MAX_RUN_CHARS + 1);
    }
  });

  it('extrapolates beyond the character cap and says so', async () => {
    const encoder = await loadEncoding('o200k_base');
    const text = 'hello world '.repeat(10_000); // 2 tokens per 12 characters, and the last space
    const exact = o200k.countTokens(text);
    expect(countTokens(text, encoder), 'under the cap').toEqual({ tokens: exact, truncated: false });
    const capped = countTokens(text, encoder, 12_000);
    expect(capped.truncated, 'over the cap').toBe(true);
    expect(Math.abs(capped.tokens - exact), 'extrapolated').toBeLessThan(exact * 0.01);
  });

  it('applies the default 1,000,000-character cap', async () => {
    const result = await countTokensAsync('hello world '.repeat(100_000), 'gpt-4o');
    expect(result.truncated).toBe(true);
    expect(Math.abs(result.tokens - 200_000)).toBeLessThan(2_000);
  });

  it('gives the event loop turns while counting a large text', async () => {
    let turns = 0;
    let counting = true;
    const tick = (): void => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    await countTokensAsync('lorem ipsum dolor sit amet '.repeat(12_000), 'gpt-4o');
    counting = false;
    expect(turns, 'event-loop turns during a ~320 KB count').toBeGreaterThanOrEqual(3);
  });
});

describe('pieces', () => {
  const fragments = [
    'hello',
    ' ',
    'World',
    '\n',
    '  ',
    '\t',
    '\r\n',
    '123456',
    '3.14',
    '.',
    '-',
    '--',
    "'s",
    "don't",
    'camelCase',
    'snake_case',
    '://',
    '{"a":1}',
    '中文',
    '。',
    '😀',
    '👍🏽',
    'é',
    'e\u0301',
    '<|endoftext|>',
    'aaaaaaaaaaaaaaaaaaaa',
  ];
  const text = fc.array(fc.constantFrom(...fragments), { maxLength: 60 }).map((parts) => parts.join(''));

  it('cover the text in order without splitting a surrogate pair', () => {
    fc.assert(
      fc.property(text, (t) => {
        const all = [...pieces(t, undefined, 16, 48)];
        expect(all.map((p) => t.slice(p.start, p.end)).join('')).toBe(t);
        for (const p of all) {
          const unit = t.charCodeAt(p.start);
          expect(unit >= 0xdc00 && unit <= 0xdfff, `piece at ${p.start} starts inside a pair`).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('change no count unless a cut was forced (both encodings)', async () => {
    const encoders = await Promise.all([loadEncoding('o200k_base'), loadEncoding('cl100k_base')]);
    fc.assert(
      fc.property(text, (t) => {
        const stats = { forcedCuts: 0 };
        const all = [...pieces(t, stats, 16, 48)];
        for (const encoder of encoders) {
          const summed = all.reduce((n, p) => n + encoder.countUnbounded(t.slice(p.start, p.end)), 0);
          const whole = encoder.countUnbounded(t);
          if (stats.forcedCuts === 0) expect(summed, `${encoder.name}: ${JSON.stringify(t)}`).toBe(whole);
          // Lost merges at a forced cut: at most 3 tokens per cut in 100,000 random texts.
          else expect(Math.abs(summed - whole), encoder.name).toBeLessThanOrEqual(3 * stats.forcedCuts);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// OpenAI cookbook, "How to count tokens with tiktoken": these messages are documented as 129
// prompt tokens for gpt-3.5-turbo and gpt-4, and 124 for gpt-4o and gpt-4o-mini, as counted by
// the API. By hand for gpt-4o: 6 messages × 3 + 4 names × 1 + 3 priming = 25, plus the strings
// (role + name + content) 18 + 13 + 12 + 20 + 17 + 19 = 99.
const cookbookMessages = [
  {
    role: 'system',
    content:
      'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.',
  },
  { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
  {
    role: 'system',
    name: 'example_assistant',
    content: 'Things working well together will increase revenue.',
  },
  {
    role: 'system',
    name: 'example_user',
    content:
      "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  {
    role: 'system',
    name: 'example_assistant',
    content: "Let's talk later when we're less busy about how to do better.",
  },
  {
    role: 'user',
    content: "This late pivot means we don't have time to boil the ocean for the client deliverable.",
  },
];

const o = (text: string): number => o200k.countTokens(text);

describe('estimateChatInput', () => {
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];

  const cases: [
    name: string,
    shape: BodyShape,
    model: string | null,
    body: unknown,
    tokens: number,
    exact: boolean,
  ][] = [
    ['cookbook, gpt-4o', 'openai-chat', 'gpt-4o', { messages: cookbookMessages }, 124, true],
    ['cookbook, gpt-4o-mini', 'openai-chat', 'gpt-4o-mini', { messages: cookbookMessages }, 124, true],
    ['cookbook, gpt-4', 'openai-chat', 'gpt-4', { messages: cookbookMessages }, 129, true],
    ['cookbook, gpt-3.5-turbo', 'openai-chat', 'gpt-3.5-turbo', { messages: cookbookMessages }, 129, true],
    [
      'content parts with an image',
      'openai-chat',
      'gpt-4o',
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in this picture?' },
              { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
            ],
          },
        ],
      },
      3 + o('user') + o('What is in this picture?') + OPENAI_IMAGE_TOKENS + 3,
      true,
    ],
    [
      'tools and a tool call',
      'openai-chat',
      'gpt-4o',
      {
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'c1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'c1', content: '18°C' },
        ],
        tools,
      },
      3 * 3 +
        o('user') +
        o('Weather in Paris?') +
        o('assistant') +
        o('get_weather') +
        o('{"city":"Paris"}') +
        o('tool') +
        o('18°C') +
        3 +
        o(JSON.stringify(tools)),
      true,
    ],
    [
      'responses, string input and instructions',
      'openai-responses',
      'gpt-4.1',
      { input: 'Tell me a joke', instructions: 'Be brief.' },
      3 + o('system') + o('Be brief.') + 3 + o('user') + o('Tell me a joke') + 3,
      true,
    ],
    [
      'responses, items',
      'openai-responses',
      'gpt-4.1',
      {
        input: [
          { role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
          { type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'c', output: 'done' },
        ],
      },
      3 + o('user') + o('Hi') + 3 + o('f') + o('{}') + 3 + o('done') + 3,
      true,
    ],
    [
      'legacy completions, several prompts',
      'openai-completions',
      'gpt-3.5-turbo-instruct',
      { prompt: ['Say hi', 'Say bye'] },
      cl100k.countTokens('Say hi') + cl100k.countTokens('Say bye'),
      true,
    ],
    [
      'embeddings, token-id arrays count their length',
      'openai-embeddings',
      'text-embedding-3-small',
      {
        input: [
          [1, 2, 3],
          [4, 5],
        ],
      },
      5,
      true,
    ],
    [
      'embeddings, one token-id array',
      'openai-embeddings',
      'text-embedding-3-small',
      { input: [7, 8, 9] },
      3,
      true,
    ],
    [
      'embeddings, strings, no message overhead',
      'openai-embeddings',
      'text-embedding-3-large',
      { input: ['hello world', 'tiktoken is great!'] },
      2 + 6,
      true,
    ],
    [
      'Anthropic, system blocks and messages',
      'anthropic-messages',
      'claude-3-5-sonnet-20241022',
      {
        system: [{ type: 'text', text: 'You are terse.' }],
        messages: [
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: [{ type: 'text', text: 'Hi.' }] },
        ],
      },
      3 + o('You are terse.') + 3 + o('user') + o('Hello') + 3 + o('assistant') + o('Hi.') + 3,
      false,
    ],
    ['not an object', 'openai-chat', 'gpt-4o', 'nonsense', 0, true],
    ['no messages: only the reply priming', 'openai-chat', 'gpt-4o', {}, 3, true],
  ];

  it.each(cases)('%s', async (_name, shape, model, body, tokens, exact) => {
    expect(await estimateChatInput(body, model, shape)).toEqual({ tokens, exact, truncated: false });
  });

  it('shares the character cap across a body and flags truncation', async () => {
    const big = 'hello world '.repeat(50_000);
    const result = await estimateChatInput(
      {
        messages: [
          { role: 'user', content: big },
          { role: 'user', content: big },
        ],
      },
      'gpt-4o',
      'openai-chat',
    );
    expect(result.truncated).toBe(true);
    expect(Math.abs(result.tokens - 200_000)).toBeLessThan(2_000);
  });
});

describe('countOutputText', () => {
  it('counts received output with the model tokenizer', async () => {
    expect(await countOutputText('tiktoken is great!', 'gpt-4')).toEqual({
      tokens: 6,
      exact: true,
      truncated: false,
    });
    expect(await countOutputText('', 'gpt-4o')).toEqual({ tokens: 0, exact: true, truncated: false });
  });
});
