/**
 * What every source of scrape-time figures registers through: a meter, and one batch callback
 * per source that reads its stats once per scrape for all of its instruments. A failing
 * callback is logged, never thrown into the SDK, and every callback is removed when the
 * `observe()` that added it stops.
 */
import type {
  BatchObservableResult,
  Meter,
  Observable,
  ObservableCounter,
  ObservableGauge,
} from '@opentelemetry/api';

/** One instrument: its name (a constant beside the source's registration), unit and help text. */
export interface InstrumentSpec {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

export interface Registry {
  readonly meter: Meter;
  /** Reads a source once per scrape for all of `observables`. */
  batch(observables: Observable[], callback: (result: BatchObservableResult) => unknown): void;
}

interface RegistryHandle {
  readonly registry: Registry;
  /** Removes every callback the registry added. */
  stop(): void;
}

export function createRegistry(
  meter: Meter,
  log: (message: string, error?: unknown) => void,
): RegistryHandle {
  const removers: Array<() => void> = [];
  return {
    registry: {
      meter,
      batch(observables, callback) {
        const safe = async (result: BatchObservableResult) => {
          try {
            await callback(result);
          } catch (error) {
            log('llm-meter: a metrics callback failed', error);
          }
        };
        meter.addBatchObservableCallback(safe, observables);
        removers.push(() => meter.removeBatchObservableCallback(safe, observables));
      },
    },
    stop() {
      for (const remove of removers.splice(0)) remove();
    },
  };
}

export const observableCounter = (meter: Meter, spec: InstrumentSpec): ObservableCounter =>
  meter.createObservableCounter(spec.name, { unit: spec.unit, description: spec.description });

export const observableGauge = (meter: Meter, spec: InstrumentSpec): ObservableGauge =>
  meter.createObservableGauge(spec.name, { unit: spec.unit, description: spec.description });

/** A count that goes up and down (a `gauge` in the exposition, as the SDK writes non-monotonic sums). */
export const observableUpDown = (meter: Meter, spec: InstrumentSpec) =>
  meter.createObservableUpDownCounter(spec.name, { unit: spec.unit, description: spec.description });

/**
 * The shape the store and the budgets' settling share: counters that only grow, plus how many
 * wait now. `counters` maps each field of the stats to its instrument.
 */
export function observeTallies<K extends string>(
  registry: Registry,
  counters: Readonly<Record<K, InstrumentSpec>>,
  pending: InstrumentSpec,
  read: () => Record<NoInfer<K> | 'pending', number>,
): void {
  const instruments = (Object.entries(counters) as [K, InstrumentSpec][]).map(
    ([key, spec]) => [key, observableCounter(registry.meter, spec)] as const,
  );
  const gauge = observableGauge(registry.meter, pending);
  registry.batch([...instruments.map(([, instrument]) => instrument), gauge], (result) => {
    const values = read();
    for (const [key, instrument] of instruments) result.observe(instrument, values[key]);
    result.observe(gauge, values.pending);
  });
}
