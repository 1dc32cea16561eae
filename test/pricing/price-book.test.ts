import { calcPrice } from '@pydantic/genai-prices';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors/errors.js';
import {
  contextWindow,
  createPriceBook,
  type ModelPrice,
  type ResolvedPrice,
} from '../../src/pricing/index.js';
import type { TokenUsage } from '../../src/record.js';

function usage(partial: Partial<TokenUsage>): TokenUsage {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    source: 'provider',
    ...partial,
  };
}

function priced(price: ResolvedPrice | null): ResolvedPrice {
  expect(price, 'a price').not.toBeNull();
  return price!;
}

describe('lookup: name resolution', () => {
  const book = createPriceBook();
  const base = priced(book.lookup('openai', 'gpt-4o-mini'));

  it('prices gpt-4o-mini from the catalog, per token in nanos', () => {
    expect(base).toEqual({
      inputNanosPerToken: 150,
      outputNanosPerToken: 600,
      cacheReadNanosPerToken: 75,
      cacheWriteNanosPerToken: 150,
      source: 'catalog',
      pricedAs: 'gpt-4o-mini',
      catalogProvider: 'openai',
    });
  });

  const same: [name: string, provider: string | null, model: string][] = [
    ['dated', 'openai', 'gpt-4o-mini-2024-07-18'],
    ['prefixed, unknown provider', null, 'openai/gpt-4o-mini'],
    ['prefixed, openai_compatible', 'openai_compatible', 'openai/gpt-4o-mini'],
    ['prefixed and dated', 'openai', 'openai/gpt-4o-mini-2024-07-18'],
    ['upper case, spaces', 'openai', '  GPT-4o-mini '],
    ['Azure', 'azure.ai.openai', 'gpt-4o-mini'],
    ['no provider', null, 'gpt-4o-mini'],
  ];
  it.each(same)('%s resolves to the same price as gpt-4o-mini', (_name, provider, model) => {
    expect(book.lookup(provider, model)).toEqual(base);
  });

  const resolves: [
    name: string,
    provider: string | null,
    model: string,
    pricedAs: string,
    catalog: string,
  ][] = [
    ['Anthropic dated', 'anthropic', 'claude-3-5-sonnet-20241022', 'claude-3-5-sonnet', 'anthropic'],
    ['Anthropic -latest', 'anthropic', 'claude-3-5-sonnet-latest', 'claude-3-5-sonnet', 'anthropic'],
    ['Anthropic prefixed', null, 'anthropic/claude-3-5-sonnet-20241022', 'claude-3-5-sonnet', 'anthropic'],
    ['Gemini API models/ prefix', 'gcp.gemini', 'models/gemini-2.5-pro', 'gemini-2.5-pro', 'google'],
    ['Vertex Claude', 'gcp.vertex_ai', 'claude-3-5-sonnet-v2@20241022', 'claude-3-5-sonnet', 'google'],
    ['Groq', 'groq', 'llama-3.3-70b-versatile', 'llama-3.3-70b-versatile', 'groq'],
    ['Groq model, unknown provider', null, 'llama-3.3-70b-versatile', 'llama-3.3-70b-versatile', 'groq'],
    ['Mistral alias', 'mistral_ai', 'mistral-large-latest', 'mistral-large', 'mistral'],
    ['xAI', 'x_ai', 'grok-4', 'grok-4-0709', 'x-ai'],
    ['Azure falls back to OpenAI', 'azure.ai.openai', 'gpt-35-turbo', 'gpt-3.5-turbo', 'openai'],
    ['embeddings, unknown provider', null, 'text-embedding-3-small', 'text-embedding-3-small', 'openai'],
  ];
  it.each(resolves)('%s', (_name, provider, model, pricedAs, catalog) => {
    const price = priced(book.lookup(provider, model));
    expect(price.pricedAs, 'pricedAs').toBe(pricedAs);
    expect(price.catalogProvider, 'catalog provider').toBe(catalog);
  });

  const unknown: [name: string, provider: string | null, model: string | null][] = [
    ['unknown model', 'openai', 'no-such-model-7b'],
    ['Azure deployment name', 'azure.ai.openai', 'my-prod-deployment'],
    ['Ollama: local, no catalog price', 'ollama', 'llama3.2:latest'],
    ['no model', 'openai', null],
    ['empty model', 'openai', ''],
    ['absurdly long name', null, `gpt-4o-${'x'.repeat(300)}`],
  ];
  it.each(unknown)('%s: null', (_name, provider, model) => {
    expect(book.lookup(provider, model)).toBeNull();
  });

  it('stays correct when its cache is full and cleared', () => {
    const small = createPriceBook(undefined, { cacheSize: 2 });
    for (const model of ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4o-mini', 'zzz', 'gpt-4o-mini']) {
      small.lookup('openai', model);
    }
    expect(small.lookup('openai', 'gpt-4o-mini')).toEqual(base);
  });
});

describe('lookup: tiers and time', () => {
  const book = createPriceBook();

  const tiers: [inputTokens: number | undefined, input: number, output: number][] = [
    [undefined, 1250, 10_000],
    [100_000, 1250, 10_000],
    [200_000, 1250, 10_000],
    [200_001, 2500, 15_000],
  ];
  it.each(tiers)('gemini-2.5-pro with %s input tokens', (inputTokens, input, output) => {
    const price = priced(book.lookup('gcp.gemini', 'gemini-2.5-pro', inputTokens));
    expect(price.inputNanosPerToken, 'input').toBe(input);
    expect(price.outputNanosPerToken, 'output').toBe(output);
  });

  it('picks time-of-day prices by the injected clock, as the package does', () => {
    const at = (iso: string): number =>
      priced(createPriceBook(undefined, { now: () => Date.parse(iso) }).lookup('deepseek', 'deepseek-chat'))
        .inputNanosPerToken;
    // DeepSeek's off-peak window (16:30 to 00:30 UTC) halves the price.
    expect(at('2025-03-01T20:00:00Z') * 2).toBe(at('2025-03-01T12:00:00Z'));
    for (const iso of ['2025-03-01T12:00:00Z', '2025-03-01T20:00:00Z']) {
      const at = Date.parse(iso);
      const price = priced(createPriceBook(undefined, { now: () => at }).lookup('deepseek', 'deepseek-chat'));
      const expected = calcPrice({ input_tokens: 1_000_000, output_tokens: 1_000_000 }, 'deepseek-chat', {
        providerId: 'deepseek',
        timestamp: new Date(at),
      });
      expect(price.inputNanosPerToken * 1e6, iso).toBeCloseTo(expected!.input_price * 1e9, 3);
      expect(price.outputNanosPerToken * 1e6, iso).toBeCloseTo(expected!.output_price * 1e9, 3);
    }
  });
});

describe('cost', () => {
  const book = createPriceBook({
    cheap: { input: 0.0375, output: 0.15, cachedInput: 0.01, cacheWrite: 0.046875 },
  });

  it('computes parts and total by hand: cache reads and reasoning (gpt-4o-mini)', () => {
    // 150 / 75 / 600 nanos per token. 10,000 input of which 4,000 cache reads; 1,500 output of
    // which 1,000 reasoning (already inside the output figure, not added again).
    const cost = book.cost(
      usage({ inputTokens: 10_000, cacheReadTokens: 4_000, outputTokens: 1_500, reasoningTokens: 1_000 }),
      book.lookup('openai', 'gpt-4o-mini-2024-07-18'),
    );
    expect(cost).toEqual({
      totalNanos: 2_100_000, // 6,000 × 150 + 4,000 × 75 + 1,500 × 600
      inputNanos: 900_000,
      cacheReadNanos: 300_000,
      cacheWriteNanos: 0,
      outputNanos: 900_000,
      source: 'catalog',
      pricedAs: 'gpt-4o-mini',
    });
  });

  it('computes cache writes by hand (claude-3-5-sonnet, the package README example)', () => {
    // 3,000 / 3,750 / 300 / 15,000 nanos per token (input / cache write / read / output).
    const cost = book.cost(
      usage({ inputTokens: 4_740, cacheWriteTokens: 4_735, outputTokens: 255 }),
      book.lookup('anthropic', 'claude-3-5-sonnet-20241022'),
    );
    expect(cost.inputNanos).toBe(15_000);
    expect(cost.cacheWriteNanos).toBe(17_756_250);
    expect(cost.outputNanos).toBe(3_825_000);
    expect(cost.totalNanos).toBe(21_596_250);
  });

  it('rounds each part to whole nanos with fractional per-token prices', () => {
    // 37.5 / 10 / 46.875 / 150 nanos per token.
    const cost = book.cost(
      usage({ inputTokens: 10, cacheReadTokens: 3, cacheWriteTokens: 4, outputTokens: 7 }),
      book.lookup(null, 'cheap'),
    );
    expect(cost).toEqual({
      totalNanos: 113 + 30 + 188 + 1_050,
      inputNanos: 113, // 3 × 37.5 = 112.5
      cacheReadNanos: 30,
      cacheWriteNanos: 188, // 4 × 46.875 = 187.5
      outputNanos: 1_050,
      source: 'override',
      pricedAs: 'cheap',
    });
    expect(Number.isInteger(cost.totalNanos)).toBe(true);
  });

  const agreeing: [provider: string, model: string, u: Partial<TokenUsage>][] = [
    ['openai', 'gpt-4o-mini', { inputTokens: 12_345, cacheReadTokens: 2_048, outputTokens: 678 }],
    [
      'anthropic',
      'claude-sonnet-4-5',
      { inputTokens: 50_000, cacheReadTokens: 30_000, cacheWriteTokens: 10_000, outputTokens: 2_000 },
    ],
    ['google', 'gemini-2.5-pro', { inputTokens: 250_000, cacheReadTokens: 100_000, outputTokens: 5_000 }],
    ['groq', 'llama-3.3-70b-versatile', { inputTokens: 1_000, outputTokens: 1_000 }],
  ];
  it.each(agreeing)('agrees with the package’s calcPrice: %s %s', (provider, model, u) => {
    const full = usage(u);
    const cost = book.cost(full, book.lookup(provider, model, full.inputTokens));
    const expected = calcPrice(
      {
        input_tokens: full.inputTokens,
        cache_read_tokens: full.cacheReadTokens,
        cache_write_tokens: full.cacheWriteTokens,
        output_tokens: full.outputTokens,
      },
      model,
      { providerId: provider },
    );
    expect(cost.totalNanos! / 1e9).toBeCloseTo(expected!.total_price, 8);
  });

  const unpriced: [name: string, u: TokenUsage | null, price: ResolvedPrice | null][] = [
    ['unknown model', usage({ inputTokens: 100, outputTokens: 10 }), book.lookup('openai', 'no-such-model')],
    ['unknown usage', null, book.lookup('openai', 'gpt-4o-mini')],
    ['nonsense usage', usage({ inputTokens: Number.NaN }), book.lookup('openai', 'gpt-4o-mini')],
  ];
  it.each(unpriced)('%s: null, never 0', (_name, u, price) => {
    expect(book.cost(u, price)).toEqual({
      totalNanos: null,
      inputNanos: null,
      cacheReadNanos: null,
      cacheWriteNanos: null,
      outputNanos: null,
      source: null,
      pricedAs: null,
    });
  });

  it('projects the maximum cost of a request', () => {
    const price = book.lookup('openai', 'gpt-4o-mini');
    expect(book.projectedMaxCostNanos(1_000, 500, price)).toBe(1_000 * 150 + 500 * 600);
    expect(book.projectedMaxCostNanos(1_000, 500, null)).toBeNull();
  });
});

describe('overrides', () => {
  it('win over the catalog, for dated and prefixed names too', () => {
    const book = createPriceBook({ 'gpt-4o-mini': { input: 1, output: 2 } });
    for (const model of ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 'openai/gpt-4o-mini']) {
      expect(book.lookup('openai', model), model).toEqual({
        inputNanosPerToken: 1_000,
        outputNanosPerToken: 2_000,
        cacheReadNanosPerToken: 1_000,
        cacheWriteNanosPerToken: 1_000,
        source: 'override',
        pricedAs: 'gpt-4o-mini',
        catalogProvider: null,
      });
    }
    expect(book.lookup('openai', 'gpt-4o')?.source, 'other models still from the catalog').toBe('catalog');
  });

  it('price models the catalog does not know, on any provider', () => {
    const book = createPriceBook({ 'my-model': { input: 0.5, output: 1.5, cachedInput: 0.05 } });
    expect(book.lookup('ollama', 'my-model')?.cacheReadNanosPerToken).toBe(50);
    expect(book.lookup(null, 'MY-MODEL-latest')?.pricedAs).toBe('my-model');
  });

  const bad: [name: string, prices: Record<string, unknown>, message: string][] = [
    [
      'negative input',
      { m: { input: -1, output: 1 } },
      'Expected `prices["m"].input` to be a non-negative number.',
    ],
    [
      'NaN output',
      { m: { input: 1, output: Number.NaN } },
      'Expected `prices["m"].output` to be a non-negative number.',
    ],
    ['missing output', { m: { input: 1 } }, 'Expected `prices["m"].output` to be a non-negative number.'],
    [
      'infinite cachedInput',
      { 'my-model': { input: 1, output: 1, cachedInput: Number.POSITIVE_INFINITY } },
      'Expected `prices["my-model"].cachedInput` to be a non-negative number.',
    ],
    [
      'string cacheWrite',
      { m: { input: 1, output: 1, cacheWrite: '2' } },
      'Expected `prices["m"].cacheWrite` to be a non-negative number.',
    ],
    ['not an object', { m: 3 }, 'Expected `prices["m"]` to be an object with `input` and `output`.'],
  ];
  it.each(bad)('%s: throws naming the model and field', (_name, prices, message) => {
    const create = (): unknown => createPriceBook(prices as Record<string, ModelPrice>);
    expect(create).toThrow(InvalidOptionError);
    expect(create).toThrow(message);
  });
});

describe('contextWindow', () => {
  const cases: [name: string, provider: string | null, model: string | null, window: number | null][] = [
    ['catalog: gpt-4o', 'openai', 'gpt-4o', 128_000],
    ['catalog: dated Claude', 'anthropic', 'claude-3-5-sonnet-20241022', 200_000],
    ['catalog: gpt-3.5-turbo', 'openai', 'gpt-3.5-turbo', 16_385],
    ['catalog: gpt-4', 'openai', 'gpt-4-0613', 8_192],
    ['table: gemini-2.5-pro (no catalog window)', 'gcp.gemini', 'models/gemini-2.5-pro', 1_048_576],
    ['unknown', 'openai', 'no-such-model', null],
    ['Ollama: a server setting', 'ollama', 'llama3.2', null],
    ['no model', 'openai', null, null],
  ];
  it.each(cases)('%s', (_name, provider, model, window) => {
    expect(contextWindow(provider, model)).toBe(window);
  });
});
