import { describe, expect, it } from 'vitest';
import type { ParsedUsage } from '../src/providers/types.js';
import { MAX_TOKENS, type TokenUsage } from '../src/record.js';
import { clampUsage } from '../src/usage.js';

const usage = (figures: Partial<ParsedUsage>): ParsedUsage => ({
  inputTokens: 100,
  outputTokens: 20,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  ...figures,
});

/** Each figure a whole number in [0, MAX_TOKENS], each part within its whole; a change is flagged. */
const cases: [string, Partial<ParsedUsage>, Partial<TokenUsage>][] = [
  ['figures in range are the provider’s, untouched', { cacheReadTokens: 40, reasoningTokens: 5 }, {}],
  ['a count above 2^63', { inputTokens: 2 ** 64 }, { inputTokens: MAX_TOKENS, clamped: ['inputTokens'] }],
  [
    'output above MAX_TOKENS',
    { outputTokens: 1e20 },
    { outputTokens: MAX_TOKENS, clamped: ['outputTokens'] },
  ],
  ['MAX_TOKENS itself is believed', { outputTokens: MAX_TOKENS }, { outputTokens: MAX_TOKENS }],
  [
    'reasoning of 1e12 next to 1 output token (reasoning is part of the output)',
    { outputTokens: 1, reasoningTokens: 1e12 },
    { outputTokens: 1, reasoningTokens: 1, clamped: ['reasoningTokens'] },
  ],
  [
    'cache reads larger than the input',
    { inputTokens: 10, cacheReadTokens: 50 },
    { inputTokens: 10, cacheReadTokens: 10, clamped: ['cacheReadTokens'] },
  ],
  [
    'cache writes larger than the input left after cache reads',
    { inputTokens: 10, cacheReadTokens: 6, cacheWriteTokens: 6 },
    { cacheReadTokens: 6, cacheWriteTokens: 4, clamped: ['cacheWriteTokens'] },
  ],
  [
    'parts follow a clamped whole',
    { inputTokens: 1e300, cacheReadTokens: 1e300, outputTokens: 1e300, reasoningTokens: 1e300 },
    {
      inputTokens: MAX_TOKENS,
      cacheReadTokens: MAX_TOKENS,
      outputTokens: MAX_TOKENS,
      reasoningTokens: MAX_TOKENS,
      clamped: ['inputTokens', 'cacheReadTokens', 'outputTokens', 'reasoningTokens'],
    },
  ],
  ['a negative count', { outputTokens: -5 }, { outputTokens: 0, clamped: ['outputTokens'] }],
  ['a float', { outputTokens: 3.6 }, { outputTokens: 4, clamped: ['outputTokens'] }],
  ['NaN', { inputTokens: Number.NaN }, { inputTokens: 0, clamped: ['inputTokens'] }],
  [
    'Infinity',
    { inputTokens: Number.POSITIVE_INFINITY },
    { inputTokens: MAX_TOKENS, clamped: ['inputTokens'] },
  ],
  [
    'a string where a number belongs',
    { outputTokens: '12' as unknown as number },
    { outputTokens: 0, clamped: ['outputTokens'] },
  ],
];

describe('clampUsage', () => {
  it.each(cases)('%s', (_, figures, expected) => {
    const result = clampUsage(usage(figures), 'provider');
    const changed = expected.clamped !== undefined;
    expect(result, 'bounded figures').toMatchObject({
      ...expected,
      source: changed ? 'estimated' : 'provider',
    });
    if (!changed) expect(result.clamped, 'nothing flagged').toBeUndefined();
    for (const key of [
      'inputTokens',
      'outputTokens',
      'cacheReadTokens',
      'cacheWriteTokens',
      'reasoningTokens',
    ] as const) {
      expect(Number.isSafeInteger(result[key]) && result[key] >= 0 && result[key] <= MAX_TOKENS, key).toBe(
        true,
      );
    }
  });

  it('a figure the adapter could not read makes the usage estimated, with nothing clamped', () => {
    const result = clampUsage({ ...usage({}), unreadable: true }, 'provider');
    expect(result.source).toBe('estimated');
    expect(result.clamped).toBeUndefined();
    expect(result, 'no stray field').not.toHaveProperty('unreadable');
  });

  it('an estimate stays an estimate', () => {
    expect(clampUsage(usage({}), 'estimated').source).toBe('estimated');
  });
});
