/**
 * The meter's extension points, for the parts of llm-meter that plug into it (the store and
 * budgets at creation, the resilience guards in withGuards). Not on the public meter object:
 * reachable only from a meter, through this module.
 */
import type { PreparedCall } from './fetch/call.js';
import type { Refusal } from './fetch/refuse.js';
import type { CallRecord } from './record.js';

/** A pre-flight gate: a refusal keeps the call from being sent. Synchronous when it does not apply. */
export type Gate = (call: PreparedCall) => Promise<Refusal | null> | Refusal | null;

export interface MeterInternals {
  /** Sinks that see every record, in order, each behind the safe boundary. */
  addSink(name: string, sink: (record: CallRecord) => void): void;
  /** Pre-flight gates (budgets), in order; the first refusal wins. */
  addGate(name: string, gate: Gate): void;
  /** Work to settle on flush (store commits, alert outbox). */
  addFlusher(name: string, flush: () => Promise<void>): void;
  addCloser(name: string, close: () => Promise<void>): void;
}

const byMeter = new WeakMap<object, MeterInternals>();

export function attachInternals(meter: object, internals: MeterInternals): void {
  byMeter.set(meter, internals);
}

/** The internals of a meter made by createMeter, or undefined for any other object. */
export function internalsOf(meter: object): MeterInternals | undefined {
  return byMeter.get(meter);
}
