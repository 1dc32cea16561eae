import { randomUUID } from 'node:crypto';
import { createAssembler } from './assemble.js';
import { currentAttribution, runWith } from './attribution.js';
import { type Budgets, createBudgets } from './budgets/service.js';
import { InvalidOptionError } from './errors/errors.js';
import type { CallEnd, PreparedCall } from './fetch/call.js';
import { type Engine, WRAPPER_PLACES } from './fetch/engine.js';
import type { Refusal } from './fetch/refuse.js';
import { DEFAULT_MAX_REQUEST_BODY_BYTES, type FetchLike } from './fetch/request.js';
import { wrapFetch } from './fetch/wrap.js';
import { attachInternals, type Gate, type MeterInternals } from './meter-internals.js';
import { positiveNumber } from './options.js';
import { contextWindowRefusal, estimatePreflight } from './preflight.js';
import { createPriceBook } from './pricing/index.js';
import { DEFAULT_ADAPTERS } from './providers/registry.js';
import type { Attribution, CallRecord } from './record.js';
import { createSafe } from './safe.js';
import { openSqliteStore } from './store/sqlite.js';
import { openSqliteLedger } from './store/sqlite-ledger.js';
import type { UsageStore } from './store/types.js';
import { baggageAttribution } from './telemetry/baggage.js';
import { forceFlushProviders } from './telemetry/flush.js';
import { createMetricSink } from './telemetry/metrics.js';
import { createSpanSink, type SpanHandle } from './telemetry/spans.js';
import type { Meter, MeterOptions } from './types.js';

const MiB = 1024 * 1024;

export function createMeter(options: MeterOptions = {}): Meter {
  const captureContent = options.captureContent === true;
  const maxRequestBodyBytes = positiveNumber(
    'maxRequestBodyBytes',
    options.maxRequestBodyBytes,
    DEFAULT_MAX_REQUEST_BODY_BYTES,
  );
  const maxResponseBodyBytes = positiveNumber('maxResponseBodyBytes', options.maxResponseBodyBytes, 16 * MiB);
  // Checked before any database is opened (createBudgets checks it again for its own callers).
  positiveNumber('reservationLeaseMs', options.reservationLeaseMs, 1);
  const prices = createPriceBook(options.prices);
  const safe = createSafe(options.logger);
  const spans = createSpanSink({
    tracerProvider: options.tracerProvider,
    captureContent,
    onError: (error) => safe.report('spans', error),
  });
  const metricSink = createMetricSink({
    meterProvider: options.meterProvider,
    onError: (error) => safe.report('metrics', error),
  });
  const assembler = createAssembler({ prices, captureContent, apiKeyHashSalt: options.apiKeyHashSalt });

  const sinks: { name: string; sink: (r: CallRecord) => void }[] = [
    { name: 'metrics', sink: (r) => metricSink.record(r) },
  ];
  const gates: { name: string; gate: Gate }[] = [];
  const flushers: { name: string; flush: () => Promise<void> }[] = [];
  const closers: { name: string; close: () => Promise<void> }[] = [];
  const assembling = new Set<Promise<void>>();
  const timeOrigin = performance.timeOrigin;
  let active = 0;
  let calls = 0;
  let closed = false;
  let idle: (() => void)[] = [];

  function dispatch(end: CallEnd<SpanHandle>, record: CallRecord): void {
    if (end.span) safe.run('spans', () => spans.end(end.span!, record));
    for (const { name, sink } of sinks) safe.run(name, () => sink(record));
    if (options.onRecord) safe.run('onRecord', () => options.onRecord!(record));
  }

  function attribution(): Attribution {
    const fromRun = currentAttribution();
    const fromBaggage = safe.run('baggage', baggageAttribution) ?? null;
    if (!fromBaggage) return fromRun ?? { tags: {} };
    return {
      user: fromRun?.user ?? fromBaggage.user,
      project: fromRun?.project ?? fromBaggage.project,
      feature: fromRun?.feature ?? fromBaggage.feature,
      tags: fromRun?.tags ?? {},
    };
  }

  const engine: Engine<SpanHandle> = {
    adapters: DEFAULT_ADAPTERS,
    maxRequestBodyBytes,
    maxResponseBodyBytes,
    streamUsage: options.streamUsage !== false,
    hashesApiKeys: Boolean(options.apiKeyHashSalt),
    now: () => timeOrigin + performance.now(),
    newId: randomUUID,
    attribution,
    spans,
    begin() {
      calls++;
      active++;
    },
    estimate: (call) => estimatePreflight(call, prices),
    gate(call) {
      if (!options.enforceContextWindow && gates.length === 0) return null;
      // Gates answer synchronously when nothing applies (the common case): no promise, no tick.
      const run = async (from: number, pending: Promise<Refusal | null> | null) => {
        if (pending) {
          const refusal = await safe.runAsync(gates[from - 1]!.name, () => pending);
          if (refusal) return refusal;
        }
        for (let i = from; i < gates.length; i++) {
          const refusal = await safe.runAsync(gates[i]!.name, () => gates[i]!.gate(call));
          if (refusal) return refusal;
        }
        return null;
      };
      if (options.enforceContextWindow) {
        return call.estimate().then(
          (figures) => contextWindowRefusal(call, figures) ?? run(0, null),
          (error) => {
            // The window cannot be checked: fail open and send the call, the other gates unasked.
            safe.report('contextWindow', error);
            return null;
          },
        );
      }
      for (let i = 0; i < gates.length; i++) {
        const result = safe.run(gates[i]!.name, () => gates[i]!.gate(call)) ?? null;
        if (result instanceof Promise) return run(i + 1, result);
        if (result) return result;
      }
      return null;
    },
    end(end) {
      const done = () => {
        active--;
        if (active === 0 && idle.length > 0) {
          const waiting = idle;
          idle = [];
          for (const resolve of waiting) resolve();
        }
      };
      let built: CallRecord | Promise<CallRecord>;
      try {
        built = assembler.build(end);
      } catch (error) {
        safe.report('assemble', error);
        done();
        return;
      }
      if (!(built instanceof Promise)) {
        dispatch(end, built);
        done();
        return;
      }
      const pending: Promise<void> = built.then(
        (record) => dispatch(end, record),
        (error) => safe.report('assemble', error),
      );
      assembling.add(pending);
      void pending.finally(() => {
        assembling.delete(pending);
        done();
      });
    },
    report: safe.report,
  };

  const internals: MeterInternals = {
    addSink: (name, sink) => sinks.push({ name, sink }),
    addGate: (name, gate) => gates.push({ name, gate }),
    addFlusher: (name, f) => flushers.push({ name, flush: f }),
    addCloser: (name, c) => closers.push({ name, close: c }),
  };
  const { store, budgets } = openSinks(options, internals);

  const wrap = (fetch: FetchLike): FetchLike => wrapFetch(fetch, engine);
  const meteredFetch = wrap(options.fetch ?? ((input, init) => globalThis.fetch(input, init)));

  async function flush(): Promise<void> {
    while (assembling.size > 0) await Promise.allSettled([...assembling]);
    safe.run('spans', () => spans.flush());
    safe.run('metrics', () => metricSink.flush());
    for (const { name, flush } of flushers) await safe.runAsync(name, flush);
    await safe.runAsync('exporters', () =>
      forceFlushProviders(options.tracerProvider, options.meterProvider),
    );
  }

  const meter: Meter = {
    fetch: meteredFetch,
    wrapFetch: wrap,
    instrumentGlobalFetch() {
      const original = globalThis.fetch;
      const metered = wrap(original as FetchLike);
      globalThis.fetch = metered as typeof fetch;
      return () => {
        if (globalThis.fetch === (metered as typeof fetch)) globalThis.fetch = original;
      };
    },
    run: (input, fn) => runWith(input, fn),
    flush,
    async shutdown() {
      if (closed) return;
      closed = true;
      // Calls still streaming get a grace period to finish; their records are then complete.
      if (active > 0) {
        await Promise.race([
          new Promise<void>((resolve) => idle.push(resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref()),
        ]);
      }
      await flush();
      for (const { name, close } of closers) await safe.runAsync(name, close);
    },
    stats: () => ({
      calls,
      inFlight: active,
      sinkErrors: safe.errors(),
      sinkErrorsBy: errorsBy(),
      store: store?.stats() ?? null,
      budgets: budgets?.stats() ?? null,
    }),
    store,
    budgets,
  };
  attachInternals(meter, internals);
  return meter;

  /** Every place that can fail, at zero until it does: a /metrics series exists from the start. */
  function errorsBy(): Record<string, number> {
    const places: string[] = ['assemble', 'baggage', 'spans', 'metrics', 'exporters', ...WRAPPER_PLACES];
    if (options.onRecord) places.push('onRecord');
    if (options.enforceContextWindow) places.push('contextWindow');
    for (const list of [sinks, gates, flushers, closers]) for (const { name } of list) places.push(name);
    return { ...Object.fromEntries(places.map((place) => [place, 0])), ...safe.errorsBy() };
  }
}

/**
 * The SQLite sinks: usage rows, then budgets (spend, reservations, alerts). A blocking budget
 * is checked before the call leaves the process, with the call's projected maximum cost.
 */
function openSinks(
  options: MeterOptions,
  meter: MeterInternals,
): { store: UsageStore | null; budgets: Budgets | null } {
  const path = options.database === undefined ? './llm-meter.db' : options.database;
  if (path === false) return { store: null, budgets: null };
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidOptionError('Expected `database` to be a file path, ":memory:" or false.');
  }
  const store = openSqliteStore({
    path,
    durability: options.durability,
    onError: (e) => options.logger?.('llm-meter: store write failed', e),
  });
  const ledger = openSqliteLedger({ path });
  const budgets = createBudgets({
    store: ledger,
    usage: store,
    allowPrivateWebhooks: options.allowPrivateWebhooks === true,
    pollIntervalMs: options.webhookPollIntervalMs,
    reservationLeaseMs: options.reservationLeaseMs,
    logger: options.logger,
  });
  budgets.start();
  meter.addSink('store', (record) => store.write(record));
  meter.addSink('budgets', (record) => budgets.settle(record));
  meter.addGate('budgets', (call) => {
    const { info } = call;
    const scope = {
      user: call.attribution.user,
      project: call.attribution.project,
      feature: call.attribution.feature,
      provider: call.detection.provider,
      // A body that could not be read names no model to trust: every model's budget applies.
      models: info.parsed || info.model !== null ? [info.model] : null,
    };
    const blocking = budgets.blockingFor(scope);
    if (blocking.length === 0) return null;
    // Fail closed. The cost of an unparsed call cannot be bounded: its model, output limit and
    // number of choices are unknown or unreadable, and whoever sends it chooses them, so any
    // projection would be a guess it could exceed (a bypass is the attack this guards against).
    // The official SDKs always send JSON that parses, so this refuses no ordinary call.
    if (!info.parsed) return budgetRefusal(blocking[0]!.name, unboundedReason(call));
    return (async () => {
      const figures = await call.estimate();
      const refusing = budgets.reserve(call.id, blocking, figures.projectedMaxCostNanos ?? 0);
      return refusing ? budgetRefusal(refusing.name) : null;
    })();
  });
  meter.addFlusher('store', () => store.flush());
  meter.addFlusher('budgets', () => budgets.flush());
  meter.addCloser('budgets', async () => {
    await budgets.stop();
    ledger.close();
  });
  meter.addCloser('store', () => store.close());
  return { store, budgets };
}

/** A 429 in the provider's own error shape that the official SDKs raise and do not retry. */
function budgetRefusal(budgetName: string, why?: string): Refusal {
  return {
    kind: 'budget',
    marker: ['x-llm-meter-budget', 'exceeded'],
    status: 429,
    type: 'budget_exceeded',
    message: why
      ? `Budget "${budgetName}" blocks calls whose cost cannot be bounded, and ${why}; it was not sent.`
      : `Budget "${budgetName}" would be exceeded by this call; it was not sent.`,
  };
}

/** Why an unparsed call's cost cannot be bounded, for the refusal's message. */
function unboundedReason(call: PreparedCall): string {
  switch (call.unparsedReason) {
    case null:
      return 'a field of its body that the cost depends on has a type the API does not take';
    case 'too_large':
      return 'its body is larger than `maxRequestBodyBytes`';
    case 'absent':
      return 'it has no body';
    case 'not_json':
      return 'its body is not a JSON object';
    default:
      return `its body could not be read (${call.unparsedReason})`;
  }
}
