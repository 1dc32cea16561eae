/**
 * What the meter could not record is counted, not silently dropped: meter.stats() and the
 * /metrics exposition carry the store's and the budgets' own counters and the fail-open
 * boundary's failures by place, while the database is locked and after it recovers.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMeter } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { createPrometheusMetrics } from '../../src/telemetry/prometheus.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { parseExposition } from '../helpers/exposition.js';
import { post } from '../helpers/metered.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(async () => {
  await sim.close();
});

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] };

describe('meter.stats() and /metrics while the database is locked', () => {
  it('counts retried store commits and budget settles, then their recovery; failures by place', async () => {
    const path = newDb();
    const prometheus = createPrometheusMetrics();
    let throwing = true;
    const meter = createMeter({
      database: path,
      prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
      meterProvider: prometheus.meterProvider,
      webhookPollIntervalMs: 0,
      onRecord: () => {
        if (throwing) throw new Error('a hook that fails');
      },
    });
    const stopObserving = prometheus.observe(meter);
    await meter.budgets!.create({ name: 'cap', scope: { user: 'alice' }, period: 'day', limit_usd: 10 });

    const before = meter.stats();
    expect(before.sinkErrorsBy, 'every place is listed at zero before it fails').toMatchObject({
      spans: 0,
      metrics: 0,
      store: 0,
      budgets: 0,
      onRecord: 0,
    });
    const scrapedBefore = parseExposition(await prometheus.scrape());
    expect(scrapedBefore.find('llm_meter_sink_errors_total', { sink: 'store' })).toHaveLength(1);
    expect(scrapedBefore.sum('llm_meter_budget_settle_failed_total')).toBe(0);

    const holder = new Database(path);
    holder.pragma('busy_timeout = 0');
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const res = await meter.run({ user: 'alice' }, () =>
        meter.fetch(`${sim.url}/v1/chat/completions`, post(chat)),
      );
      expect(res.status, 'the caller sees the provider, not the outage').toBe(200);
      await res.json();
      // The record is assembled one tick later; the budget settle meets the lock, waits briefly
      // and keeps the call for later; the store's writer thread waits the busy timeout (5 s, on
      // nobody's path) before it counts the failure and keeps the call.
      await vi.waitFor(
        () => {
          expect(meter.stats().budgets!.failed).toBeGreaterThan(0);
          expect(meter.stats().store!.failed).toBeGreaterThan(0);
        },
        { timeout: 15_000, interval: 50 },
      );
      const during = meter.stats();
      expect(during.calls).toBe(1);
      expect(during.store).toMatchObject({ pending: 1, written: 0 });
      expect(during.store!.failed).toBeGreaterThan(0);
      expect(during.budgets).toMatchObject({ pending: 1, settled: 0 });
      expect(during.budgets!.failed).toBeGreaterThan(0);
      expect(during.sinkErrorsBy.onRecord).toBe(1);
      expect(during.sinkErrors).toBe(1);

      const scraped = parseExposition(await prometheus.scrape());
      expect(scraped.sum('llm_meter_store_pending')).toBe(1);
      expect(scraped.sum('llm_meter_store_failed_total')).toBeGreaterThan(0);
      expect(scraped.sum('llm_meter_budget_settle_pending')).toBe(1);
      expect(scraped.sum('llm_meter_budget_settle_failed_total')).toBeGreaterThan(0);
      expect(scraped.sum('llm_meter_sink_errors_total', { sink: 'onRecord' })).toBe(1);
      expect(scraped.sum('llm_meter_sink_errors_total', { sink: 'store' })).toBe(0);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }

    throwing = false;
    await meter.flush();
    const after = meter.stats();
    expect(after.store).toMatchObject({ pending: 0, written: 1, dropped: 0 });
    expect(after.budgets).toMatchObject({ pending: 0, settled: 1, dropped: 0 });
    const scrapedAfter = parseExposition(await prometheus.scrape());
    expect(scrapedAfter.sum('llm_meter_store_written_total')).toBe(1);
    expect(scrapedAfter.sum('llm_meter_budget_settled_total')).toBe(1);
    expect(scrapedAfter.sum('llm_meter_budget_settle_pending')).toBe(0);
    const view = (await meter.budgets!.list())[0]!;
    expect(view.requests, 'the spend kept during the outage reached the budget').toBe(1);

    stopObserving();
    await meter.shutdown();
    await prometheus.shutdown();
  });

  it('counts records stored with clamped figures, in meter.stats() and /metrics', async () => {
    const prometheus = createPrometheusMetrics();
    const meter = createMeter({
      database: newDb(),
      meterProvider: prometheus.meterProvider,
      webhookPollIntervalMs: 0,
    });
    const stopObserving = prometheus.observe(meter);
    meter.store!.write(makeRecord({ usage: { inputTokens: 9e18, reasoningTokens: 1e12 } }));
    meter.store!.write(makeRecord());
    await meter.flush();
    expect(meter.stats().store).toMatchObject({ written: 2, clamped: 1, invalid: 0, pending: 0 });
    const scraped = parseExposition(await prometheus.scrape());
    expect(scraped.sum('llm_meter_store_clamped_total')).toBe(1);
    expect(scraped.sum('llm_meter_store_invalid_total')).toBe(0);
    stopObserving();
    await meter.shutdown();
    await prometheus.shutdown();
  });
});
