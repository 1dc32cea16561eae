/** The meter's own counters (`Meter.stats()`): calls in flight and the failures it swallowed. */
import { observableCounter, observableUpDown, type Registry } from './register.js';

export const METRIC_CALLS_IN_FLIGHT = 'llm_meter.calls.in_flight';
export const METRIC_SINK_ERRORS = 'llm_meter.sink.errors';
/** Where a swallowed failure happened (spans, metrics, store, budgets...). */
export const ATTR_SINK = 'sink';

/** The figures of `Meter.stats()` this file reads. */
export interface MeterFigures {
  inFlight: number;
  sinkErrors: number;
  /** Per place; when given, `sinkErrors` (their total) is not reported. */
  sinkErrorsBy?: Record<string, number>;
}

export function observeMeterStats(registry: Registry, stats: () => MeterFigures): void {
  const inFlight = observableUpDown(registry.meter, {
    name: METRIC_CALLS_IN_FLIGHT,
    unit: '{call}',
    description: 'Metered calls started and not yet recorded.',
  });
  const sinkErrors = observableCounter(registry.meter, {
    name: METRIC_SINK_ERRORS,
    unit: '{error}',
    description: 'Failures inside llm-meter (parsing, export, storage) swallowed to keep calls intact.',
  });
  registry.batch([inFlight, sinkErrors], (result) => {
    const s = stats();
    result.observe(inFlight, s.inFlight);
    if (s.sinkErrorsBy) {
      for (const [sink, count] of Object.entries(s.sinkErrorsBy))
        result.observe(sinkErrors, count, { [ATTR_SINK]: sink });
    } else {
      result.observe(sinkErrors, s.sinkErrors);
    }
  });
}
