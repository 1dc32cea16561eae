// The OpenTelemetry SDK setup every benchmark gives a metered client: spans through a batch
// processor and metrics through a periodic reader, both to no-op exporters (exporting is not what
// is measured). The SDK is imported only when asked for, so a process that never sets it up (a
// baseline, or OpenLLMetry with its own SDK) does not load it.

/** A span exporter that drops spans and counts them, so a run can show spans were recorded. */
export function countingSpanExporter() {
  const exporter = {
    spans: 0,
    export(spans, done) {
      exporter.spans += spans.length;
      done({ code: 0 });
    },
    shutdown: async () => {},
    forceFlush: async () => {},
  };
  return exporter;
}

/** { exporter, tracerProvider, meterProvider, flush } with no-op exporters; nothing registered globally. */
export async function sdkProviders() {
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } = await import(
    '@opentelemetry/sdk-metrics'
  );
  const exporter = countingSpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: {
          export: (_metrics, done) => done({ code: 0 }),
          selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
          forceFlush: async () => {},
          shutdown: async () => {},
        },
        exportIntervalMillis: 10_000,
      }),
    ],
  });
  return {
    exporter,
    tracerProvider,
    meterProvider,
    flush: async () => {
      await tracerProvider.forceFlush();
      await meterProvider.forceFlush();
    },
  };
}
