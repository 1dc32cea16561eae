import { describe, expect, it } from 'vitest';
import { DEFAULT_ADAPTERS, detect } from '../../src/providers/registry.js';
import type { ParsedUsage } from '../../src/providers/types.js';

/**
 * Adapters never produce a figure that is not a finite, whole, non-negative number, whatever the
 * wire says (src/usage.ts then bounds them at MAX_TOKENS), and they say when a figure on the wire
 * could not be read. Red-team issue 12.2.
 */

const HUGE = 1e308;

function usageOf(url: string, body: unknown): ParsedUsage | null {
  const detection = detect(DEFAULT_ADAPTERS, new URL(url), 'POST', new Headers());
  if (!detection) throw new Error(`not detected: ${url}`);
  const info = detection.adapter.parseRequest({ model: 'm' }, detection);
  const parser = detection.adapter.createParser(detection, info);
  parser.json(body);
  return parser.result().usage;
}

const cases: { name: string; url: string; body: unknown; unreadable?: boolean }[] = [
  {
    name: 'OpenAI chat',
    url: 'https://api.openai.com/v1/chat/completions',
    body: {
      usage: {
        prompt_tokens: HUGE,
        completion_tokens: HUGE,
        prompt_tokens_details: { cached_tokens: HUGE },
        completion_tokens_details: { reasoning_tokens: HUGE },
      },
    },
  },
  {
    name: 'OpenAI Responses',
    url: 'https://api.openai.com/v1/responses',
    body: {
      usage: {
        input_tokens: HUGE,
        output_tokens: HUGE,
        input_tokens_details: { cached_tokens: HUGE },
        output_tokens_details: { reasoning_tokens: HUGE },
      },
    },
  },
  {
    name: 'Anthropic (input is the sum of three figures)',
    url: 'https://api.anthropic.com/v1/messages',
    body: {
      type: 'message',
      usage: {
        input_tokens: HUGE,
        output_tokens: HUGE,
        cache_read_input_tokens: HUGE,
        cache_creation_input_tokens: HUGE,
      },
    },
  },
  {
    name: 'Gemini (input and output are sums)',
    url: 'https://generativelanguage.googleapis.com/v1beta/models/g:generateContent',
    body: {
      usageMetadata: {
        promptTokenCount: HUGE,
        toolUsePromptTokenCount: HUGE,
        candidatesTokenCount: HUGE,
        thoughtsTokenCount: HUGE,
      },
    },
  },
  {
    name: 'Ollama',
    url: 'http://127.0.0.1:11434/api/chat',
    body: { done: true, prompt_eval_count: HUGE, eval_count: HUGE },
  },
  {
    name: 'OpenAI chat, a string and a negative count',
    url: 'https://api.openai.com/v1/chat/completions',
    body: {
      usage: {
        prompt_tokens: 5,
        completion_tokens: '3',
        completion_tokens_details: { reasoning_tokens: -1 },
      },
    },
    unreadable: true,
  },
  {
    name: 'Anthropic, a string count',
    url: 'https://api.anthropic.com/v1/messages',
    body: { type: 'message', usage: { input_tokens: 5, output_tokens: 'many' } },
    unreadable: true,
  },
  {
    name: 'Gemini, an object where a count belongs',
    url: 'https://generativelanguage.googleapis.com/v1beta/models/g:generateContent',
    body: { usageMetadata: { promptTokenCount: 5, candidatesTokenCount: { n: 1 } } },
    unreadable: true,
  },
  {
    name: 'Gemini, proto3 decimal strings are counts',
    url: 'https://generativelanguage.googleapis.com/v1beta/models/g:generateContent',
    body: { usageMetadata: { promptTokenCount: '5', candidatesTokenCount: '2' } },
  },
  {
    name: 'Ollama, a negative count',
    url: 'http://127.0.0.1:11434/api/generate',
    body: { done: true, prompt_eval_count: 5, eval_count: -2 },
    unreadable: true,
  },
];

describe('adapters read token figures as finite whole numbers', () => {
  it.each(cases)('$name', ({ url, body, unreadable }) => {
    const usage = usageOf(url, body);
    expect(usage, 'usage read').not.toBeNull();
    for (const key of [
      'inputTokens',
      'outputTokens',
      'cacheReadTokens',
      'cacheWriteTokens',
      'reasoningTokens',
    ] as const) {
      const value = usage![key];
      expect(Number.isFinite(value) && Number.isInteger(value) && value >= 0, `${key} = ${value}`).toBe(true);
    }
    expect(usage!.unreadable === true, 'unreadable figure flagged').toBe(unreadable === true);
  });
});
