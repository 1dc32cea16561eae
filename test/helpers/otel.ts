import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';

export function createTestTelemetry() {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracerProvider,
    meterProvider,
    exporter,
    /** All finished spans. */
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    /** The LLM CLIENT spans only (kind 2), oldest first. */
    llmSpans: (): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.kind === 2),
    childrenOf: (span: ReadableSpan): ReadableSpan[] =>
      exporter.getFinishedSpans().filter((s) => s.parentSpanContext?.spanId === span.spanContext().spanId),
    async metrics() {
      await reader.forceFlush();
      return metricExporter.getMetrics();
    },
    /** The data points of one metric as last exported (cumulative): attributes and value. */
    async metricPoints(name: string): Promise<{ attributes: Attributes; value: unknown }[]> {
      await reader.forceFlush();
      const last = metricExporter.getMetrics().at(-1);
      const metric = last?.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
      return (metric?.dataPoints ?? []).map((p) => ({ attributes: p.attributes, value: p.value }));
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** Assert a span's attributes, one message per key so a failure names the attribute. */
export function assertSpan(
  span: ReadableSpan | undefined,
  expected: { name?: string; attributes?: Attributes },
) {
  expect(span, 'span exists').toBeDefined();
  if (!span) return;
  if (expected.name !== undefined) expect(span.name, 'span name').toBe(expected.name);
  for (const [key, value] of Object.entries(expected.attributes ?? {})) {
    expect(span.attributes[key], `attribute ${key}`).toEqual(value);
  }
}
