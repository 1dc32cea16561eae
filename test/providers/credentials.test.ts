/**
 * src/providers/credentials.ts: the one list of credential headers, and the key a request carries
 * (what the records' key hash, the rate limiter's buckets and the gateway's key swap all read).
 */
import { describe, expect, it } from 'vitest';
import { apiKeyOf, CREDENTIAL_HEADERS } from '../../src/providers/credentials.js';
import { presentedKey, swapKey } from '../../src/proxy/keys.js';

const cases: [string, Record<string, string>, { header: string; value: string } | null][] = [
  [
    'OpenAI: a bearer token',
    { authorization: 'Bearer sk-openai' },
    { header: 'authorization', value: 'sk-openai' },
  ],
  [
    'the scheme in any case',
    { authorization: 'bearer   sk-openai ' },
    { header: 'authorization', value: 'sk-openai' },
  ],
  ['Anthropic: x-api-key', { 'x-api-key': 'sk-ant' }, { header: 'x-api-key', value: 'sk-ant' }],
  ['Azure OpenAI: api-key', { 'api-key': 'az' }, { header: 'api-key', value: 'az' }],
  ['Gemini: x-goog-api-key', { 'x-goog-api-key': 'AIza' }, { header: 'x-goog-api-key', value: 'AIza' }],
  [
    'a provider header before Authorization',
    { authorization: 'Bearer sk-proxy', 'x-api-key': 'sk-ant' },
    { header: 'x-api-key', value: 'sk-ant' },
  ],
  [
    'x-api-key, then api-key, then x-goog-api-key',
    { 'x-goog-api-key': 'g', 'api-key': 'a' },
    { header: 'api-key', value: 'a' },
  ],
  ['Authorization without the Bearer scheme is no key', { authorization: 'Basic dXNlcjpwYXNz' }, null],
  [
    'a Basic Authorization beside a provider key',
    { authorization: 'Basic dXNlcjpwYXNz', 'api-key': 'az' },
    { header: 'api-key', value: 'az' },
  ],
  ['a bearer scheme with no token', { authorization: 'Bearer ' }, null],
  ['an empty header', { 'x-api-key': '  ' }, null],
  ['no credential at all', { 'content-type': 'application/json' }, null],
];

describe('apiKeyOf', () => {
  it.each(cases)('%s (a header record)', (_name, headers, expected) => {
    expect(apiKeyOf(headers)).toEqual(expected);
  });

  it.each(cases)('%s (fetch Headers)', (_name, headers, expected) => {
    expect(apiKeyOf(new Headers(headers))).toEqual(expected);
  });

  it('the list is every header a key is looked for in, lower-case', () => {
    expect([...CREDENTIAL_HEADERS].sort()).toEqual([
      'api-key',
      'authorization',
      'x-api-key',
      'x-goog-api-key',
    ]);
  });
});

describe('the gateway swaps keys by the same list', () => {
  it.each(cases.filter(([, , expected]) => expected !== null))(
    '%s: the provider key goes where the client put its key; no other credential stays',
    (_name, sent, expected) => {
      const headers = { ...sent, 'content-type': 'application/json' };
      const presented = presentedKey(headers);
      expect(presented).toEqual(expected);
      swapKey(headers, presented!, 'sk-real');
      const left = CREDENTIAL_HEADERS.filter((h) => h in headers);
      expect(left, 'one credential header').toEqual([expected!.header]);
      expect(apiKeyOf(headers)?.value).toBe('sk-real');
      expect(headers['content-type']).toBe('application/json');
    },
  );
});
