import { afterEach, describe, expect, it, vi } from 'vitest';
import { attributionFrom, parseTags, upstreamHeaders } from '../../src/proxy/headers.js';
import {
  createKeyring,
  generateGatewayKey,
  keyAttribution,
  presentedKey,
  swapKey,
} from '../../src/proxy/keys.js';
import { clientKey } from '../../src/proxy/limits.js';
import { resolveRoute } from '../../src/proxy/routes.js';
import { resolveTimeouts, startCallTimer } from '../../src/proxy/timeouts.js';

const UPSTREAMS = new Map([
  ['openai', new URL('https://api.openai.com')],
  ['anthropic', new URL('https://api.anthropic.com')],
  ['azure', new URL('https://x.openai.azure.com/openai/')],
  ['gemini', new URL('https://generativelanguage.googleapis.com')],
  ['groq', new URL('https://api.groq.com/openai')],
]);

/** The upstream URL a target routes to, or null when it is refused. */
function routedUrl(target: string): string | null {
  const routing = resolveRoute(target, UPSTREAMS);
  return 'route' in routing ? routing.route.url : null;
}

describe('routes', () => {
  const cases: [string, string, string | null][] = [
    ['OpenAI by shape', '/v1/chat/completions', 'https://api.openai.com/v1/chat/completions'],
    ['Anthropic by shape', '/v1/messages', 'https://api.anthropic.com/v1/messages'],
    [
      'Anthropic count_tokens',
      '/v1/messages/count_tokens?beta=true',
      'https://api.anthropic.com/v1/messages/count_tokens?beta=true',
    ],
    [
      'Gemini by shape',
      '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse',
      'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse',
    ],
    [
      'a prefix names the upstream',
      '/groq/v1/chat/completions',
      'https://api.groq.com/openai/v1/chat/completions',
    ],
    [
      'a base path is kept',
      '/azure/deployments/gpt4o/chat/completions?api-version=2024-10-21',
      'https://x.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21',
    ],
    ['prefix wins over shape', '/openai/v1/messages', 'https://api.openai.com/v1/messages'],
    ['no upstream for Ollama here', '/api/chat', null],
    ['unknown path', '/hello', null],
  ];
  for (const [name, path, url] of cases) {
    it(name, () => expect(routedUrl(path)).toBe(url));
  }
});

describe('headers', () => {
  it('tags: JSON object or k=v pairs; anything else is no tags', () => {
    expect(parseTags('{"env":"prod","n":2,"deep":{"x":1}}')).toEqual({ env: 'prod', n: '2' });
    expect(parseTags('env=prod, team=ml%20ops,bad,=x')).toEqual({ env: 'prod', team: 'ml ops' });
    expect(parseTags('{not json')).toEqual({});
    expect(parseTags(undefined)).toEqual({});
  });

  it('attribution from x-llm-meter-* headers', () => {
    expect(
      attributionFrom({ 'x-llm-meter-user': 'u', 'x-llm-meter-feature': 'f', 'x-llm-meter-tags': 'a=1' }),
    ).toEqual({ user: 'u', feature: 'f', a: '1' });
  });

  it('hop-by-hop, connection-named and attribution headers are not forwarded; credentials are', () => {
    expect(
      upstreamHeaders({
        host: 'gw',
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        te: 'trailers',
        trailer: 'x',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic x',
        'content-length': '10',
        'accept-encoding': 'br',
        'x-llm-meter-user': 'alice',
        authorization: 'Bearer sk-1',
        'x-api-key': 'sk-ant',
        'content-type': 'application/json',
      }),
    ).toEqual({ authorization: 'Bearer sk-1', 'x-api-key': 'sk-ant', 'content-type': 'application/json' });
  });
});

describe('gateway keys', () => {
  it('generated keys are lmk_ + 32 base62 characters, all different', () => {
    const keys = new Set(Array.from({ length: 50 }, generateGatewayKey));
    expect(keys.size).toBe(50);
    for (const k of keys) expect(k).toMatch(/^lmk_[0-9A-Za-z]{32}$/);
  });

  it('looked up by digest; the provider key goes where the client put the gateway key', () => {
    const key = generateGatewayKey();
    const ring = createKeyring({ [key]: { user: 'u', providerKeys: { openai: 'sk-real' } } });
    expect(ring.lookup(key)?.user).toBe('u');
    expect(ring.lookup(`${key}x`)).toBeNull();
    const headers: Record<string, string> = { 'x-api-key': key };
    const presented = presentedKey(headers)!;
    swapKey(headers, presented, 'sk-real');
    expect(headers).toEqual({ 'x-api-key': 'sk-real' });
    const bearer: Record<string, string> = { authorization: `Bearer ${key}` };
    swapKey(bearer, presentedKey(bearer)!, 'sk-real');
    expect(bearer).toEqual({ authorization: 'Bearer sk-real' });
  });

  it('a malformed key table is refused without echoing keys', () => {
    expect(() => createKeyring({ 'sk-not-a-gateway-key': { providerKeys: {} } })).toThrow(
      /start with "lmk_"/,
    );
    expect(() => createKeyring({ lmk_0123456789abcdefgh: { providerKeys: { openai: 5 } } as never })).toThrow(
      /providerKeys/,
    );
  });
});

describe('gateway keys: attribution', () => {
  const fromHeaders = attributionFrom({
    'x-llm-meter-user': 'mallory',
    'x-llm-meter-project': 'p-header',
    'x-llm-meter-feature': 'f-header',
    'x-llm-meter-tags': 'team=header,env=prod',
  });
  const cases: [string, Parameters<typeof keyAttribution>[0], Record<string, string>][] = [
    [
      'no pin: what the key sets wins, the rest comes from headers (as before)',
      { user: 'bob', tags: { team: 'key' }, providerKeys: {} },
      { user: 'bob', project: 'p-header', feature: 'f-header', team: 'key', env: 'prod' },
    ],
    [
      'pin all: headers set nothing, unset fields stay unset',
      { user: 'bob', tags: { team: 'key' }, pin: 'all', providerKeys: {} },
      { user: 'bob', team: 'key' },
    ],
    [
      'pin some: pinned project unset, pinned tags are the key tags only, feature still from headers',
      { user: 'bob', tags: { team: 'key' }, pin: ['project', 'tags'], providerKeys: {} },
      { user: 'bob', feature: 'f-header', team: 'key' },
    ],
    [
      'pin user without a user: no user at all, not the header one',
      { project: 'search', pin: ['user'], providerKeys: {} },
      { project: 'search', feature: 'f-header', team: 'header', env: 'prod' },
    ],
    [
      'a key tag named like a field never sets the field',
      { tags: { user: 'eve' }, pin: ['user'], providerKeys: {} },
      { project: 'p-header', feature: 'f-header', team: 'header', env: 'prod' },
    ],
  ];
  for (const [name, entry, expected] of cases) {
    it(name, () => expect(keyAttribution(entry, fromHeaders)).toEqual(expected));
  }

  it('header tags named like a field are dropped, not read as that field', () => {
    expect(attributionFrom({ 'x-llm-meter-tags': '{"user":"mallory","project":"x","env":"prod"}' })).toEqual({
      env: 'prod',
    });
    expect(attributionFrom({ 'x-llm-meter-tags': 'feature=x,env=prod', 'x-llm-meter-user': 'u' })).toEqual({
      user: 'u',
      env: 'prod',
    });
  });

  it('pin, tags and provider keys are checked where they enter, without echoing keys', () => {
    const key = 'lmk_0123456789abcdefgh';
    expect(() => createKeyring({ [key]: { pin: ['everything'], providerKeys: {} } as never })).toThrow(
      'Expected `pin` of a gateway key to be "all" or a list of "user", "project", "feature", "tags".',
    );
    expect(() => createKeyring({ [key]: { tags: { n: 1 }, providerKeys: {} } as never })).toThrow(
      'Expected `tags` of a gateway key to be an object of strings.',
    );
    let message = '';
    try {
      createKeyring({ [key]: { providerKeys: { openai: 'sk-secret-value\n' } } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe('Expected `providerKeys.openai` to be a non-empty key of visible ASCII characters.');
    expect(message).not.toContain('sk-secret');
  });
});

describe('limits: who a connection counts against', () => {
  const cases: [string, string, string][] = [
    ['IPv4', '203.0.113.7', '203.0.113.7'],
    ['IPv4-mapped IPv6', '::ffff:203.0.113.7', '203.0.113.7'],
    ['IPv6 loopback', '::1', '::1'],
    ['IPv6: its /64', '2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['IPv6: another address of the same /64', '2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['IPv6: compressed inside the prefix', '2001:db8::5', '2001:db8:0:0::/64'],
    ['IPv6: leading zeros and case', '2001:0DB8:0001:0002::1', '2001:db8:1:2::/64'],
    ['IPv6 with a zone', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
  ];
  for (const [name, address, key] of cases) it(name, () => expect(clientKey(address)).toBe(key));
});

describe('timeouts', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('defaults, and narrower ones must fit inside wider ones', () => {
    expect(resolveTimeouts()).toEqual({
      connectMs: 10_000,
      headersMs: 600_000,
      idleMs: 300_000,
      totalMs: 900_000,
    });
    expect(resolveTimeouts({ totalMs: 1000 })).toEqual({
      connectMs: 1000,
      headersMs: 1000,
      idleMs: 1000,
      totalMs: 1000,
    });
    expect(() => resolveTimeouts({ headersMs: 0 })).toThrow(
      'Expected `timeouts.headersMs` to be a positive number',
    );
    expect(() => resolveTimeouts({ connectMs: 5000, headersMs: 1000 })).toThrow(/connectMs/);
  });

  function run(steps: (timer: ReturnType<typeof startCallTimer>) => void) {
    vi.useFakeTimers();
    const fired: string[] = [];
    const timer = startCallTimer(
      { connectMs: 10, headersMs: 100, idleMs: 50, totalMs: 1000 },
      (kind, ms) => fired.push(`${kind}@${Date.now() - start} (${ms})`),
      () => Date.now(),
    );
    const start = Date.now();
    steps(timer);
    return fired;
  }

  it('headers timeout', () => {
    expect(run(() => vi.advanceTimersByTime(100))).toEqual(['headers@100 (100)']);
  });

  it('idle: each chunk moves the deadline; 50 ms of silence after the last one fires', () => {
    const fired = run((t) => {
      vi.advanceTimersByTime(90);
      t.headers();
      for (let i = 0; i < 10; i++) {
        vi.advanceTimersByTime(40);
        t.chunk();
      }
      vi.advanceTimersByTime(49);
    });
    expect(fired, 'nothing while chunks keep coming').toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired, '50 ms after the last chunk').toEqual(['idle@540 (50)']);
  });

  it('idle fires 50 ms after the last chunk; a paused (slow client) call does not', () => {
    const fired = run((t) => {
      t.headers();
      vi.advanceTimersByTime(30);
      t.chunk();
      t.pause();
      vi.advanceTimersByTime(500);
      t.resume();
      vi.advanceTimersByTime(50);
    });
    expect(fired).toEqual(['idle@580 (50)']);
  });

  it('total bounds everything, chunks or not', () => {
    const fired = run((t) => {
      t.headers();
      for (let i = 0; i < 40; i++) {
        vi.advanceTimersByTime(30);
        t.chunk();
      }
    });
    expect(fired).toEqual(['total@1000 (1000)']);
  });
});
