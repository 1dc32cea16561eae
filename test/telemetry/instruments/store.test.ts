import { afterEach, describe, expect, it } from 'vitest';
import { observeStore, type StoreFigures } from '../../../src/telemetry/instruments/store.js';
import { observeSource, type SourceUnderTest } from '../../helpers/scrape.js';

let source: SourceUnderTest | undefined;
afterEach(() => source?.shutdown());

describe('the usage store on /metrics', () => {
  it('has a counter per write outcome and a gauge of records waiting, with their help text', async () => {
    const stats: StoreFigures = { written: 40, failed: 2, dropped: 3, invalid: 1, clamped: 7, pending: 5 };
    source = observeSource((registry) => observeStore(registry, { stats: () => stats }));
    const scrape = await source.scrape();
    expect(scrape.families).toEqual([
      '# HELP llm_meter_store_written_total Usage records committed to the store.',
      '# TYPE llm_meter_store_written_total counter',
      '# HELP llm_meter_store_failed_total Store commits that failed (retried).',
      '# TYPE llm_meter_store_failed_total counter',
      '# HELP llm_meter_store_dropped_total Usage records discarded: queue overflow or written after close.',
      '# TYPE llm_meter_store_dropped_total counter',
      '# HELP llm_meter_store_invalid_total Usage records refused and discarded, alone (the rest of their batch committed).',
      '# TYPE llm_meter_store_invalid_total counter',
      '# HELP llm_meter_store_clamped_total Usage records stored with out-of-range figures clamped (tokens, cost, durations).',
      '# TYPE llm_meter_store_clamped_total counter',
      '# HELP llm_meter_store_pending Usage records waiting to be committed.',
      '# TYPE llm_meter_store_pending gauge',
    ]);
    const m = scrape.exposition;
    expect(
      Object.fromEntries(scrape.series.map((name) => [name, m.sum(name)])),
      'one unlabelled series per figure, each with its own field',
    ).toEqual({
      llm_meter_store_written_total: 40,
      llm_meter_store_failed_total: 2,
      llm_meter_store_dropped_total: 3,
      llm_meter_store_invalid_total: 1,
      llm_meter_store_clamped_total: 7,
      llm_meter_store_pending: 5,
    });
  });

  it('reads a store that does not count clamped records as 0 clamped', async () => {
    source = observeSource((registry) =>
      observeStore(registry, {
        stats: () => ({ written: 1, failed: 0, dropped: 0, invalid: 0, pending: 0 }),
      }),
    );
    const scrape = await source.scrape();
    expect(scrape.exposition.sum('llm_meter_store_clamped_total')).toBe(0);
  });

  it('reads the store once per scrape, so a scrape shows the current figures', async () => {
    let reads = 0;
    const stats = (): StoreFigures => ({ written: ++reads, failed: 0, dropped: 0, invalid: 0, pending: 0 });
    source = observeSource((registry) => observeStore(registry, { stats }));
    await source.scrape();
    const second = await source.scrape();
    expect(reads).toBe(2);
    expect(second.exposition.sum('llm_meter_store_written_total')).toBe(2);
  });
});
