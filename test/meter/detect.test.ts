import { describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { toSimulator } from '../helpers/metered.js';
import { useSimulator } from '../helpers/simulator.js';

/**
 * Red-team issue 12: a body the upstream accepts must not slip past metering, budgets and guards
 * because llm-meter reads it differently. Whether a call is an LLM call is decided by its URL and
 * the fields that matter (a model), never by the absence of fields nobody reads; a call to an LLM
 * path whose body cannot be read is metered as unparsed, and a blocking budget refuses it (its
 * cost cannot be bounded). Every wire family, against the simulator, through a real SQLite file.
 */

const file = useSimulator();
const newDb = useTempDb();

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4 },
  'llama3.2': { input: 0.05, output: 0.1 },
};

interface Family {
  name: string;
  /** The URL the caller uses; `toSimulator` sends it to the simulator. */
  url: string;
  provider: string;
  model: string;
  /** A body the provider serves, with null and unexpected fields beside the ones that matter. */
  odd: Record<string, unknown>;
}

const FAMILIES: Family[] = [
  {
    name: 'OpenAI chat',
    url: 'https://api.openai.com/v1/chat/completions',
    provider: 'openai',
    model: 'gpt-4o-mini',
    odd: {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi', parts: null, id: 'm1' }],
      parts: null,
      metadata: { weird: [1, null] },
    },
  },
  {
    name: 'OpenAI-compatible',
    url: 'http://127.0.0.1:8000/v1/chat/completions',
    provider: 'openai_compatible',
    model: 'gpt-4o-mini',
    odd: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi', parts: null }], extra: null },
  },
  {
    name: 'Anthropic',
    url: 'https://api.anthropic.com/v1/messages',
    provider: 'anthropic',
    model: 'claude-haiku-4-5',
    odd: {
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi', parts: null }],
      unknown_field: { a: null },
    },
  },
  {
    name: 'Gemini',
    url: 'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent',
    provider: 'gcp.gemini',
    model: 'gemini-2.0-flash',
    odd: { contents: [{ role: 'user', parts: [{ text: 'hi', extra: null }], id: null }], labels: null },
  },
  {
    name: 'Ollama chat',
    url: 'http://gpu-box.internal:3000/api/chat',
    provider: 'ollama',
    model: 'llama3.2',
    odd: {
      model: 'llama3.2',
      stream: false,
      messages: [{ role: 'user', content: 'hi', parts: null }],
    },
  },
  {
    name: 'Ollama generate',
    url: 'http://gpu-box.internal:3000/api/generate',
    provider: 'ollama',
    model: 'llama3.2',
    odd: { model: 'llama3.2', stream: false, prompt: 'hi', messages: null, parts: [{ type: 'text' }] },
  },
];

/**
 * A body that is not JSON, on each family's URL. Ollama's paths are shared with other servers:
 * there a body that is not JSON is not Ollama's (Ollama refuses it) unless the host is Ollama's own.
 */
const unparsedUrl = (family: Family) => family.url.replace('gpu-box.internal:3000', '127.0.0.1:11434');

const post = (body: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body,
});

function setup() {
  const records: CallRecord[] = [];
  const meter = createMeter({
    database: newDb(),
    prices: PRICES,
    onRecord: (r) => records.push(r),
    webhookPollIntervalMs: 0,
  });
  file.closeAfterTest({ close: () => meter.shutdown() });
  return { meter, records, fetch: meter.wrapFetch(toSimulator(file.sim)) };
}

describe('a body with null and unexpected fields is metered like any other', () => {
  it.each(FAMILIES)('$name: recorded as parsed, with its model; the provider got it as sent', async (f) => {
    const { meter, records, fetch } = setup();
    const body = JSON.stringify(f.odd);
    const res = await fetch(f.url, post(body));
    await res.arrayBuffer();
    await meter.flush();
    expect(records, 'one record').toHaveLength(1);
    expect(records[0]).toMatchObject({
      provider: f.provider,
      requestModel: f.model,
      request: { parsed: true },
    });
    expect(file.sim.calls, 'the call was sent').toHaveLength(1);
    expect(file.sim.calls[0]!.body, 'as it came').toEqual(f.odd);
  });
});

describe('a body that cannot be read, on an LLM path, is metered as unparsed', () => {
  const bodies: [string, string][] = [
    ['not JSON', 'model=gpt-4o-mini&prompt=hi'],
    ['a JSON array', '[{"model":"gpt-4o-mini"}]'],
  ];
  for (const [what, body] of bodies) {
    it.each(FAMILIES)(`$name, ${what}: recorded with request.parsed false`, async (f) => {
      const { meter, records, fetch } = setup();
      const res = await fetch(unparsedUrl(f), post(body));
      await res.arrayBuffer();
      await meter.flush();
      expect(records, 'one record').toHaveLength(1);
      expect(records[0]).toMatchObject({ provider: f.provider, request: { parsed: false } });
      expect(file.sim.calls, 'sent: without a budget nothing stops it').toHaveLength(1);
    });
  }

  it.each([
    ['a model that is not a name', { model: 7, messages: [{ role: 'user', content: 'hi' }] }],
    ['max_tokens as a string', { model: 'gpt-4o-mini', max_tokens: '100', messages: [] }],
    ['messages that are not a list', { model: 'gpt-4o-mini', messages: 'hi' }],
  ])(
    'OpenAI-compatible, %s: wrong types in fields that matter are unparsed, not unmetered',
    async (_, body) => {
      const { meter, records, fetch } = setup();
      await (await fetch(FAMILIES[1]!.url, post(JSON.stringify(body)))).arrayBuffer();
      await meter.flush();
      expect(records, 'one record').toHaveLength(1);
      expect(records[0]!.request.parsed).toBe(false);
    },
  );
});

describe('a blocking budget fails closed', () => {
  async function blockingBudget(meter: ReturnType<typeof setup>['meter'], limitUsd: number) {
    await meter.budgets!.create({
      name: 'cap',
      scope: {},
      period: 'day',
      limit_usd: limitUsd,
      action: 'block',
    });
  }

  it.each(FAMILIES)('$name: with no room, the odd body and an unreadable one are both refused', async (f) => {
    const { meter, records, fetch } = setup();
    await blockingBudget(meter, 0.000001);
    const odd = await fetch(f.url, post(JSON.stringify(f.odd)));
    expect(odd.status, 'odd body refused').toBe(429);
    expect(odd.headers.get('x-should-retry')).toBe('false');
    const unread = await fetch(unparsedUrl(f), post('not json'));
    expect(unread.status, 'unreadable body refused').toBe(429);
    expect(await unread.text()).toContain('cannot be bounded');
    await meter.flush();
    expect(file.sim.calls, 'nothing reached the provider').toHaveLength(0);
    expect(records.map((r) => [r.outcome, r.errorType, r.request.parsed])).toEqual([
      ['blocked', 'budget_exceeded', true],
      ['blocked', 'budget_exceeded', false],
    ]);
  });

  it('with room, a readable call goes and an unreadable one is still refused: its cost has no bound', async () => {
    const { meter, records, fetch } = setup();
    await blockingBudget(meter, 1000);
    const f = FAMILIES[0]!;
    const sent = await fetch(f.url, post(JSON.stringify(f.odd)));
    expect(sent.status).toBe(200);
    await sent.arrayBuffer();
    const unread = await fetch(f.url, post('{"model":"gpt-4o-mini","max_tokens":'));
    expect(unread.status).toBe(429);
    const wrongType = await fetch(
      f.url,
      post(JSON.stringify({ model: 'gpt-4o-mini', n: '128', messages: [] })),
    );
    expect(wrongType.status, 'a field the cost depends on, of the wrong type').toBe(429);
    await meter.flush();
    expect(file.sim.calls).toHaveLength(1);
    expect(records.map((r) => r.outcome)).toEqual(['ok', 'blocked', 'blocked']);
  });

  it('a budget scoped to a model applies to a call whose model cannot be read', async () => {
    const { meter, fetch } = setup();
    await meter.budgets!.create({
      name: 'mini-cap',
      scope: { model: 'gpt-4o-mini' },
      period: 'day',
      limit_usd: 1000,
      action: 'block',
    });
    const res = await fetch(FAMILIES[0]!.url, post('model=gpt-4o-mini'));
    expect(res.status).toBe(429);
    expect(file.sim.calls).toHaveLength(0);
  });
});
