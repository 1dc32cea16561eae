import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/index.js';
import { type TimingReport, WORDS } from '../../src/sim/index.js';
import { type Harness, useHarness } from '../helpers/harness.js';

/**
 * Latency split against the simulator's own truth: a provider-reported split is taken as
 * reported (exact), an inferred one comes within 15% of the planned queue and prefill.
 */

const env = useHarness();

/** A prompt of roughly `tokens` input tokens: every simulator word is one o200k token. */
function promptOf(tokens: number): { role: 'user'; content: string }[] {
  const words = Array.from({ length: Math.max(1, tokens - 7) }, (_, i) => WORDS[i % WORDS.length]);
  return [{ role: 'user', content: words.join(' ') }];
}

async function chat(harness: Harness, tokens: number, stream: boolean): Promise<void> {
  if (!stream) {
    await harness.openai.chat.completions.create({ model: 'gpt-4o-mini', messages: promptOf(tokens) });
    return;
  }
  const s = await harness.openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: promptOf(tokens),
    stream: true,
  });
  for await (const _ of s);
}

const ms = (span: ReadableSpan) => span.duration[0] * 1e3 + span.duration[1] / 1e6;
const startMs = (span: ReadableSpan) => span.startTime[0] * 1e3 + span.startTime[1] / 1e6;
const endMs = (span: ReadableSpan) => span.endTime[0] * 1e3 + span.endTime[1] / 1e6;

/** The LLM span of `record` and its phase children by name. */
function phases(harness: Harness, record: CallRecord) {
  const parent = harness.tel.llmSpans().find((s) => s.spanContext().spanId === record.spanId);
  expect(parent, 'LLM span').toBeDefined();
  const children = harness.tel.childrenOf(parent!);
  const byName = new Map(children.map((c) => [c.name, c]));
  expect(children.length, 'one child per phase').toBe(byName.size);
  for (const child of children) {
    expect(child.spanContext().traceId, `${child.name} in the same trace`).toBe(
      parent!.spanContext().traceId,
    );
    expect(startMs(child), `${child.name} starts inside the call`).toBeGreaterThanOrEqual(
      startMs(parent!) - 0.001,
    );
    expect(endMs(child), `${child.name} ends inside the call`).toBeLessThanOrEqual(endMs(parent!) + 0.001);
  }
  return { parent: parent!, byName };
}

type Json = Record<string, unknown>;

/** The JSON objects of a response body: the body itself, or each SSE data line that is JSON. */
function wireObjects(text: string): Json[] {
  try {
    return [JSON.parse(text) as Json];
  } catch {
    return text
      .split(/\r\n|\r|\n/)
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as Json);
  }
}

const num = (v: unknown): number => {
  if (typeof v !== 'number') throw new Error(`expected a number on the wire, got ${JSON.stringify(v)}`);
  return v;
};

/**
 * What each server reported on the wire, in milliseconds, read from the body the simulator
 * sent (https://console.groq.com/docs/api-reference#chat-create, llama.cpp server `timings`,
 * vLLM `metrics`).
 */
function reported(report: Exclude<TimingReport, 'none'>, body: string) {
  for (const o of wireObjects(body)) {
    if (report === 'groq') {
      const u = ((o.x_groq as Json | undefined)?.usage ?? o.usage) as Json | undefined;
      if (u?.queue_time === undefined) continue;
      return {
        queue: num(u.queue_time) * 1000,
        prefill: num(u.prompt_time) * 1000,
        generation: num(u.completion_time) * 1000,
      };
    }
    if (report === 'llamacpp') {
      const t = o.timings as Json | undefined;
      if (!t) continue;
      return { queue: null, prefill: num(t.prompt_ms), generation: num(t.predicted_ms) };
    }
    const m = o.metrics as Json | undefined;
    if (!m) continue;
    return {
      queue: num(m.queue_time_ms),
      prefill: num(m.time_to_first_token_ms) - num(m.queue_time_ms),
      generation: num(m.generation_time_ms),
    };
  }
  throw new Error(`no ${report} report in the body`);
}

describe('provider-reported split', () => {
  const cases = (['groq', 'llamacpp', 'vllm'] as const).flatMap((report) =>
    [true, false].map((stream) => ({ report, stream })),
  );

  it.each(cases)('$report, stream: $stream → the reported figures exactly, as child spans', async (c) => {
    // Keep a copy of what the simulator sent, read beside the meter (a test-only tee).
    const bodies: Promise<string>[] = [];
    const h = env.harness({
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        bodies.push(res.clone().text());
        return res;
      },
    });
    env.sim.setDefaults({
      report: c.report,
      queueMs: 23,
      prefillMsPerToken: 0.25,
      msPerToken: 3,
      outputTokens: 8,
      reasoningTokens: 2,
    });
    await chat(h, 60, c.stream);
    const record = await h.record();
    const truth = env.sim.calls[0]!;
    const want = reported(c.report, await bodies[0]!);
    if (want.queue !== null)
      expect(want.queue, 'reported queue is the planned queue').toBeCloseTo(truth.queueMs, 9);
    expect(want.prefill, 'reported prefill covers the planned prefill').toBeGreaterThanOrEqual(
      truth.prefillMs - 1e-9,
    );
    const t = record.timing;
    expect(t.prefill?.source, 'prefill source').toBe('provider');
    expect(t.prefill?.ms, 'prefill ms').toBeCloseTo(want.prefill, 9);
    expect(t.generation?.source, 'generation source').toBe('provider');
    expect(t.generation?.ms, 'generation ms').toBeCloseTo(want.generation, 9);
    if (want.queue === null) {
      // llama.cpp says nothing about queueing: no provider figure, and no envelope yet.
      expect(t.queue, 'no queue figure').toBeNull();
    } else {
      expect(t.queue?.source, 'queue source').toBe('provider');
      expect(t.queue?.ms, 'queue ms').toBeCloseTo(want.queue, 9);
    }

    const { byName, parent } = phases(h, record);
    const expected: [string, number | null][] = [
      ['queue', want.queue],
      ['prefill', want.prefill],
      ['generation', want.generation],
    ];
    for (const [name, figure] of expected) {
      const span = byName.get(name);
      if (figure === null) {
        expect(span, `no ${name} span`).toBeUndefined();
        continue;
      }
      expect(span, `${name} span`).toBeDefined();
      expect(span!.parentSpanContext?.spanId, `${name} parent`).toBe(parent.spanContext().spanId);
      expect(span!.attributes['llm_meter.source'], `${name} source attribute`).toBe('provider');
      expect(ms(span!), `${name} span duration`).toBeCloseTo(figure, 2);
    }
    // The waterfall: queue ends where prefill starts.
    if (byName.has('queue')) {
      expect(endMs(byName.get('queue')!)).toBeCloseTo(startMs(byName.get('prefill')!), 2);
    }
    expect(parent.attributes['llm_meter.prefill.source']).toBe('provider');
    expect(parent.attributes['llm_meter.prefill_ms']).toBeCloseTo(want.prefill, 9);
  });
});

describe('inferred split (lower envelope of time to first token)', () => {
  it('after a warm-up, queue and prefill are within 15% of the simulator truth', async () => {
    const h = env.harness();
    const PER_TOKEN = 0.5;
    // Warm-up: no queueing, several input sizes, each twice (the envelope keeps the fastest).
    env.sim.setDefaults({ queueMs: 0, prefillMsPerToken: PER_TOKEN, msPerToken: 1, outputTokens: 4 });
    for (const tokens of [40, 120, 400, 900, 40, 120, 400, 900]) await chat(h, tokens, true);
    await h.meter.flush();
    const warm = h.records.length;

    // Calls with a known queue, at sizes between the warm-up sizes.
    env.sim.setDefaults({ queueMs: 200 });
    for (const tokens of [300, 700]) await chat(h, tokens, true);
    await h.meter.flush();

    const calls = h.records.slice(warm);
    expect(calls).toHaveLength(2);
    for (const [i, record] of calls.entries()) {
      const truth = env.sim.calls[warm + i]!;
      expect(truth.queueMs).toBe(200);
      expect(truth.prefillMs).toBe(truth.inputTokens * PER_TOKEN);
      const label = `${truth.inputTokens} tokens`;
      expect(record.timing.queue?.source, `${label}: queue source`).toBe('estimated');
      expect(record.timing.prefill?.source, `${label}: prefill source`).toBe('estimated');
      expect(record.timing.queue!.ms, `${label}: queue`).toBeGreaterThanOrEqual(truth.queueMs * 0.85);
      expect(record.timing.queue!.ms, `${label}: queue`).toBeLessThanOrEqual(truth.queueMs * 1.15);
      expect(record.timing.prefill!.ms, `${label}: prefill`).toBeGreaterThanOrEqual(truth.prefillMs * 0.85);
      expect(record.timing.prefill!.ms, `${label}: prefill`).toBeLessThanOrEqual(truth.prefillMs * 1.15);
      // Generation is observed on the stream: first to last token as they arrived.
      expect(record.timing.generation?.source).toBe('observed');

      const { byName } = phases(h, record);
      expect(byName.get('queue')?.attributes['llm_meter.source']).toBe('estimated');
      expect(ms(byName.get('queue')!)).toBeCloseTo(record.timing.queue!.ms, 2);
      expect(ms(byName.get('prefill')!)).toBeCloseTo(record.timing.prefill!.ms, 2);
      expect(byName.get('generation')?.attributes['llm_meter.source']).toBe('observed');
    }
  });

  it('before there is an envelope, nothing is guessed', async () => {
    const h = env.harness();
    env.sim.setDefaults({ queueMs: 5, prefillMsPerToken: 0.1, outputTokens: 3 });
    await chat(h, 50, true);
    const record = await h.record();
    expect(record.timing.queue).toBeNull();
    expect(record.timing.prefill).toBeNull();
    expect(record.timing.timeToFirstTokenMs).toBeGreaterThan(0);
    const { byName } = phases(h, record);
    expect([...byName.keys()]).toEqual(['generation']);
  });

  it('observed figures are causal against the simulator: the client sees each token after it was sent', async () => {
    const h = env.harness();
    env.sim.setDefaults({ queueMs: 20, prefillMsPerToken: 0.2, msPerToken: 8, outputTokens: 12 });
    await chat(h, 100, true);
    const record = await h.record();
    const truth = env.sim.calls[0]!;
    const t = record.timing;
    // One process, one clock: the client starts before the simulator receives, and sees the
    // first and last tokens after they were written.
    expect(t.startMs).toBeLessThanOrEqual(truth.receivedAt);
    expect(t.headersMs!).toBeGreaterThanOrEqual(truth.headersSentAt!);
    expect(t.firstTokenMs!).toBeGreaterThanOrEqual(truth.firstTokenAt!);
    expect(t.lastTokenMs!).toBeGreaterThanOrEqual(truth.lastTokenAt!);
    expect(t.lastTokenMs!).toBeLessThanOrEqual(t.endMs);
    expect(t.timeToFirstTokenMs).toBe(t.firstTokenMs! - t.startMs);
    expect(t.generationMs).toBe(t.lastTokenMs! - t.firstTokenMs!);
    expect(t.generation).toEqual({ ms: t.generationMs, source: 'observed' });
    expect(t.outputTokensPerSecond).toBeCloseTo((11 * 1000) / t.generationMs!, 6);
  });
});
