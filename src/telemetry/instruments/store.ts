/** The usage store's write accounting (`UsageStore.stats()`), read at each scrape. */
import { type InstrumentSpec, observeTallies, type Registry } from './register.js';

export const METRIC_STORE_WRITTEN = 'llm_meter.store.written';
export const METRIC_STORE_FAILED = 'llm_meter.store.failed';
export const METRIC_STORE_DROPPED = 'llm_meter.store.dropped';
export const METRIC_STORE_INVALID = 'llm_meter.store.invalid';
export const METRIC_STORE_CLAMPED = 'llm_meter.store.clamped';
export const METRIC_STORE_PENDING = 'llm_meter.store.pending';

/** The figures of `UsageStore.stats()` this file reads. */
export interface StoreFigures {
  written: number;
  failed: number;
  dropped: number;
  invalid: number;
  /** Absent from stores older than the clamping: read as 0. */
  clamped?: number;
  pending: number;
}

export interface StoreSource {
  stats(): StoreFigures;
}

const COUNTERS: Record<Exclude<keyof StoreFigures, 'pending'>, InstrumentSpec> = {
  written: {
    name: METRIC_STORE_WRITTEN,
    unit: '{record}',
    description: 'Usage records committed to the store.',
  },
  failed: {
    name: METRIC_STORE_FAILED,
    unit: '{commit}',
    description: 'Store commits that failed (retried).',
  },
  dropped: {
    name: METRIC_STORE_DROPPED,
    unit: '{record}',
    description: 'Usage records discarded: queue overflow or written after close.',
  },
  invalid: {
    name: METRIC_STORE_INVALID,
    unit: '{record}',
    description: 'Usage records refused and discarded, alone (the rest of their batch committed).',
  },
  clamped: {
    name: METRIC_STORE_CLAMPED,
    unit: '{record}',
    description: 'Usage records stored with out-of-range figures clamped (tokens, cost, durations).',
  },
};

const PENDING: InstrumentSpec = {
  name: METRIC_STORE_PENDING,
  unit: '{record}',
  description: 'Usage records waiting to be committed.',
};

export function observeStore(registry: Registry, store: StoreSource): void {
  observeTallies(registry, COUNTERS, PENDING, () => ({ clamped: 0, ...store.stats() }));
}
