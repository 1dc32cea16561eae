import { afterEach, describe, expect, it } from 'vitest';
import { type MeterFigures, observeMeterStats } from '../../../src/telemetry/instruments/meter.js';
import { observeSource, type SourceUnderTest } from '../../helpers/scrape.js';

let source: SourceUnderTest | undefined;
afterEach(() => source?.shutdown());

const FAMILIES = [
  '# HELP llm_meter_calls_in_flight Metered calls started and not yet recorded.',
  '# TYPE llm_meter_calls_in_flight gauge',
  '# HELP llm_meter_sink_errors_total Failures inside llm-meter (parsing, export, storage) swallowed to keep calls intact.',
  '# TYPE llm_meter_sink_errors_total counter',
];

describe("the meter's own counters on /metrics", () => {
  it('has calls in flight and the swallowed failures labelled by sink', async () => {
    const stats: MeterFigures = {
      inFlight: 3,
      sinkErrors: 5,
      sinkErrorsBy: { spans: 0, store: 4, budgets: 1 },
    };
    source = observeSource((registry) => observeMeterStats(registry, () => stats));
    const scrape = await source.scrape();
    expect(scrape.families).toEqual(FAMILIES);
    expect(scrape.series).toEqual([
      'llm_meter_calls_in_flight',
      'llm_meter_sink_errors_total{sink="spans"}',
      'llm_meter_sink_errors_total{sink="store"}',
      'llm_meter_sink_errors_total{sink="budgets"}',
    ]);
    const m = scrape.exposition;
    expect(m.sum('llm_meter_calls_in_flight')).toBe(3);
    expect(m.sum('llm_meter_sink_errors_total', { sink: 'store' })).toBe(4);
    expect(m.sum('llm_meter_sink_errors_total'), 'the per-sink series add up to the total').toBe(5);
  });

  it('reports the total alone, unlabelled, when the meter does not say where', async () => {
    source = observeSource((registry) => observeMeterStats(registry, () => ({ inFlight: 0, sinkErrors: 7 })));
    const scrape = await source.scrape();
    expect(scrape.families).toEqual(FAMILIES);
    expect(scrape.series).toEqual(['llm_meter_calls_in_flight', 'llm_meter_sink_errors_total']);
    expect(scrape.exposition.sum('llm_meter_sink_errors_total')).toBe(7);
  });
});
