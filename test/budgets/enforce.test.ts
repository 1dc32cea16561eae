import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'claude-haiku-4-5': { input: 1, output: 5 },
};

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(async () => {
  await sim.close();
});

function meterWith(records: CallRecord[]) {
  return createMeter({
    database: newDb(),
    prices: PRICES,
    onRecord: (r) => records.push(r),
    webhookPollIntervalMs: 0,
  });
}

describe('blocking budgets', () => {
  it('the official openai client raises RateLimitError after exactly one attempt; the provider saw nothing', async () => {
    sim.reset();
    const records: CallRecord[] = [];
    const meter = meterWith(records);
    await meter.budgets!.create({
      name: 'alice-cap',
      scope: { user: 'alice' },
      period: 'day',
      limit_usd: 0.000001,
      action: 'block',
    });
    // Default maxRetries (2): x-should-retry: false must stop the SDK from retrying.
    const openai = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', fetch: meter.fetch });
    let attempts = 0;
    const counting: typeof fetch = (input, init) => {
      attempts++;
      return meter.fetch(input as string, init);
    };
    const counted = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', fetch: counting });
    const error = await meter
      .run({ user: 'alice' }, () =>
        counted.chat.completions.create({
          model: 'gpt-4o-mini',
          max_tokens: 500,
          messages: [{ role: 'user', content: 'hello' }],
        }),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).message).toContain('alice-cap');
    expect((error as { error?: { type?: string } }).error?.type).toBe('budget_exceeded');
    expect(attempts).toBe(1);
    expect(sim.calls).toHaveLength(0);
    // Another user is not in the budget's scope.
    await meter.run({ user: 'bob' }, () =>
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hello' }],
      }),
    );
    expect(sim.calls).toHaveLength(1);
    await meter.flush();
    const blocked = records.find((r) => r.outcome === 'blocked');
    expect(blocked).toMatchObject({
      errorType: 'budget_exceeded',
      httpStatus: 429,
      attribution: { user: 'alice' },
    });
    const page = await meter.store!.events({ filters: { outcome: 'blocked' } });
    expect(page.events).toHaveLength(1);
    await meter.shutdown();
  });

  it('the Anthropic SDK gets its own error shape (budget_exceeded) and does not retry', async () => {
    sim.reset();
    const meter = meterWith([]);
    await meter.budgets!.create({ name: 'all', period: 'total', limit_usd: 0.000001, action: 'block' });
    const anthropic = new Anthropic({ baseURL: sim.url, apiKey: 'sk-ant-test', fetch: meter.fetch });
    const error = await anthropic.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect((error as { error?: { error?: { type?: string } } }).error?.error?.type).toBe('budget_exceeded');
    expect(sim.calls).toHaveLength(0);
    await meter.shutdown();
  });

  it('1,000 concurrent calls against a nearly spent budget overspend by at most one reservation', async () => {
    sim.reset();
    const records: CallRecord[] = [];
    const meter = meterWith(records);
    const limitUsd = 0.01;
    const { budget } = await meter.budgets!.create({
      name: 'team',
      scope: { project: 'p' },
      period: 'day',
      limit_usd: limitUsd,
      action: 'block',
    });
    // Already spent all but about ten calls' worth.
    meter.budgets!.settle(makeRecord({ startMs: Date.now(), project: 'p', user: 'x', costNanos: 9_400_000 }));
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'one two three' }],
    });
    const results = await meter.run({ project: 'p' }, () =>
      Promise.all(
        Array.from({ length: 1000 }, () =>
          meter
            .fetch(`${sim.url}/v1/chat/completions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-sim-options': '{"outputTokens":100}' },
              body,
            })
            .then(async (res) => {
              await res.arrayBuffer();
              return res.status;
            }),
        ),
      ),
    );
    await meter.flush();
    const passed = results.filter((s) => s === 200).length;
    const blocked = results.filter((s) => s === 429).length;
    expect(passed + blocked).toBe(1000);
    expect(passed).toBeGreaterThan(0);
    expect(sim.calls).toHaveLength(passed);
    const reservation = Math.max(...records.map((r) => r.preflight.projectedMaxCostNanos ?? 0));
    const view = await meter.budgets!.get(budget.id);
    const spentNanos = Math.round(view!.spent_usd * 1e9);
    expect(spentNanos).toBeLessThanOrEqual(limitUsd * 1e9 + reservation);
    // Spend is exact: the pre-spend plus every call that went through.
    const metered = records
      .filter((r) => r.outcome === 'ok')
      .reduce((sum, r) => sum + (r.cost.totalNanos ?? 0), 0);
    expect(spentNanos).toBe(9_400_000 + metered);
    expect(view!.reserved_usd).toBe(0);
    await meter.shutdown();
  });
});
