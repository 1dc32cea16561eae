import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { chatMessages, createHarness, type Harness } from '../helpers/harness.js';
import { assertSpan } from '../helpers/otel.js';

let sim: Simulator;
let h: Harness;

beforeAll(async () => {
  sim = await startSimulator();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
afterAll(async () => {
  context.disable();
  await sim.close();
});
afterEach(async () => {
  await h?.close();
  sim.reset();
});

const ask = (harness: Harness, stream = false) =>
  stream
    ? harness.openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages: chatMessages, stream: true })
        .then(async (s) => {
          for await (const _ of s);
        })
    : harness.openai.chat.completions.create({ model: 'gpt-4o-mini', messages: chatMessages });

describe('meter.run attribution', () => {
  it('nested runs: inner keys win, tags merge; span attributes carry them', async () => {
    h = createHarness(sim);
    await h.meter.run({ user: 'alice', project: 'support', tier: 'gold', region: 'eu' }, () =>
      h.meter.run({ feature: 'triage', region: 'us' }, () => ask(h)),
    );
    const record = await h.record();
    expect(record.attribution).toEqual({
      user: 'alice',
      project: 'support',
      feature: 'triage',
      tags: { tier: 'gold', region: 'us' },
      apiKeyHash: undefined,
    });
    assertSpan(h.tel.llmSpans()[0], {
      attributes: {
        'llm_meter.user': 'alice',
        'llm_meter.project': 'support',
        'llm_meter.feature': 'triage',
        'llm_meter.tag.tier': 'gold',
        'llm_meter.tag.region': 'us',
      },
    });
  });

  it('concurrent runs keep their own attribution, also for a stream read after run() returned', async () => {
    // Content capture ties each record to the prompt it was sent with.
    h = createHarness(sim, { captureContent: true });
    sim.setDefaults({ msPerToken: 2, outputTokens: 10 });
    const users = ['u1', 'u2', 'u3', 'u4'];
    const pending = users.map((user) =>
      h.meter.run({ user }, () =>
        h.openai.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: `prompt of ${user}` }],
          stream: true,
        }),
      ),
    );
    // The streams are consumed outside every run(), interleaved.
    const streams = await Promise.all(pending);
    await Promise.all(
      streams.map(async (stream) => {
        for await (const _ of stream);
      }),
    );
    await h.meter.flush();
    expect(h.records).toHaveLength(4);
    for (const record of h.records) {
      const input = record.content?.input as { content: string }[];
      expect(input[0]!.content).toBe(`prompt of ${record.attribution.user}`);
    }
    expect(h.records.map((r) => r.attribution.user).sort()).toEqual(users);
  });

  it('no run, no baggage: no attribution', async () => {
    h = createHarness(sim);
    await ask(h);
    expect((await h.record()).attribution).toEqual({ tags: {}, apiKeyHash: undefined });
  });
});

describe('OpenTelemetry baggage', () => {
  const baggage = (entries: Record<string, string>) =>
    propagation.setBaggage(
      context.active(),
      propagation.createBaggage(
        Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { value: v }])),
      ),
    );

  it('llm_meter.* baggage entries attribute the call', async () => {
    h = createHarness(sim);
    const ctx = baggage({
      'llm_meter.user': 'bob',
      'llm_meter.project': 'search',
      'llm_meter.feature': 'rank',
    });
    await context.with(ctx, () => ask(h, true));
    expect((await h.record()).attribution).toMatchObject({ user: 'bob', project: 'search', feature: 'rank' });
    assertSpan(h.tel.llmSpans()[0], {
      attributes: { 'llm_meter.user': 'bob', 'llm_meter.project': 'search' },
    });
  });

  it('the conventional user.id baggage entry is the user', async () => {
    h = createHarness(sim);
    await context.with(baggage({ 'user.id': 'carol' }), () => ask(h));
    expect((await h.record()).attribution.user).toBe('carol');
  });

  it('meter.run wins over baggage; baggage fills what run() leaves out', async () => {
    h = createHarness(sim);
    const ctx = baggage({ 'llm_meter.user': 'bob', 'llm_meter.project': 'search' });
    await context.with(ctx, () => h.meter.run({ user: 'alice', tier: 'gold' }, () => ask(h)));
    expect((await h.record()).attribution).toMatchObject({
      user: 'alice',
      project: 'search',
      tags: { tier: 'gold' },
    });
  });
});

/** Everything the meter exported or handed out, as one string to search. */
async function everything(harness: Harness, logged: unknown[]): Promise<string> {
  const spans = harness.tel.spans().map((s) => ({
    name: s.name,
    attributes: s.attributes,
    events: s.events,
    status: s.status,
    links: s.links,
  }));
  const metrics = await harness.tel.metrics();
  return JSON.stringify({ records: harness.records, spans, metrics, logged }, (_k, v) =>
    typeof v === 'bigint' ? String(v) : v,
  );
}

describe('API keys never leave the process', () => {
  const OPENAI_KEY = 'sk-proj-SECRETopenai0123456789';
  const ANTHROPIC_KEY = 'sk-ant-api03-SECRETanthropic0123';
  const AZURE_KEY = 'SECRETazure0123456789abcdef';

  async function callWithKeys(harness: Harness) {
    const headers = { 'content-type': 'application/json' };
    const body = (extra: object) =>
      JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages, ...extra });
    for (const stream of [false, true]) {
      await (
        await harness.meter.fetch(`${sim.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { ...headers, authorization: `Bearer ${OPENAI_KEY}` },
          body: body({ stream }),
        })
      ).text();
      await (
        await harness.meter.fetch(`${sim.url}/v1/messages`, {
          method: 'POST',
          headers: { ...headers, 'x-api-key': ANTHROPIC_KEY, 'anthropic-version': '2023-06-01' },
          body: JSON.stringify({
            model: 'claude-sonnet-4-5',
            max_tokens: 50,
            messages: chatMessages.slice(1),
            stream,
          }),
        })
      ).text();
      await (
        await harness.meter.fetch(
          `${sim.url}/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21`,
          {
            method: 'POST',
            headers: { ...headers, 'api-key': AZURE_KEY },
            body: body({ stream }),
          },
        )
      ).text();
    }
    // And an error response, whose body echoes nothing secret but is parsed.
    sim.enqueue({ fault: 'auth' });
    await (
      await harness.meter.fetch(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...headers, authorization: `Bearer ${OPENAI_KEY}` },
        body: body({}),
      })
    ).text();
    await harness.meter.flush();
  }

  it.each([
    ['without a salt', undefined],
    ['with apiKeyHashSalt', 'pepper'],
  ])('%s, capturing content: no key in any record, span, metric or log line', async (_name, salt) => {
    const logged: unknown[] = [];
    h = createHarness(sim, {
      captureContent: true,
      ...(salt ? { apiKeyHashSalt: salt } : {}),
      logger: (message, error) => logged.push(message, String(error)),
    });
    await callWithKeys(h);
    expect(h.records).toHaveLength(7);
    // The keys did reach the simulator: the search below would find them if they leaked.
    expect(sim.calls.some((c) => c.headers.authorization === `Bearer ${OPENAI_KEY}`)).toBe(true);
    const dump = await everything(h, logged);
    for (const secret of [OPENAI_KEY, ANTHROPIC_KEY, AZURE_KEY, 'SECRET']) {
      expect(dump.includes(secret), `"${secret}" found`).toBe(false);
    }
  });

  it('apiKeyHashSalt gives a stable 12-hex hash per key and salt', async () => {
    const hashes = async (salt: string) => {
      h = createHarness(sim, { apiKeyHashSalt: salt });
      await callWithKeys(h);
      const out = h.records.map((r) => r.attribution.apiKeyHash);
      await h.close();
      return out;
    };
    const a = await hashes('pepper');
    const b = await hashes('pepper');
    const c = await hashes('salt');
    for (const hash of a) expect(hash).toMatch(/^[0-9a-f]{12}$/);
    expect(a, 'stable across meters').toEqual(b);
    // Calls: openai, anthropic, azure (non-stream), the same three streamed, then openai again.
    expect(a[0]).toBe(a[3]);
    expect(a[0]).toBe(a[6]);
    expect(new Set([a[0], a[1], a[2]]).size, 'one hash per key').toBe(3);
    expect(c[0], 'another salt, another hash').not.toBe(a[0]);
    h = createHarness(sim, { apiKeyHashSalt: 'pepper' });
    await ask(h);
    const record: CallRecord = await h.record();
    expect(record.attribution.apiKeyHash).toMatch(/^[0-9a-f]{12}$/);
    assertSpan(h.tel.llmSpans()[0], {
      attributes: { 'llm_meter.api_key_hash': record.attribution.apiKeyHash },
    });
  });
});

describe('captureContent', () => {
  const MARKER = 'Xylophonic-marker';
  const prompt = [{ role: 'user' as const, content: `Say something about ${MARKER}.` }];

  it('off by default: no prompt or completion in spans or records', async () => {
    h = createHarness(sim);
    const res = await h.openai.chat.completions.create({ model: 'gpt-4o-mini', messages: prompt });
    const completion = res.choices[0]!.message.content!;
    const stream = await h.openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
      stream: true,
    });
    for await (const _ of stream);
    await h.meter.flush();
    for (const record of h.records) expect(record.content).toBeUndefined();
    for (const span of h.tel.llmSpans()) {
      expect(span.attributes['gen_ai.input.messages']).toBeUndefined();
      expect(span.attributes['gen_ai.output.messages']).toBeUndefined();
    }
    const dump = await everything(h, []);
    expect(dump.includes(MARKER), 'prompt text found').toBe(false);
    expect(dump.includes(completion), 'completion text found').toBe(false);
  });

  it('on: the prompt and the completion are on the span and the record', async () => {
    h = createHarness(sim, { captureContent: true });
    const stream = await h.openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    const record = await h.record();
    expect(record.content).toEqual({ input: prompt, output: text });
    const span = h.tel.llmSpans()[0]!;
    expect(JSON.parse(span.attributes['gen_ai.input.messages'] as string)).toEqual(prompt);
    expect(JSON.parse(span.attributes['gen_ai.output.messages'] as string)).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: text }] },
    ]);
  });
});
