import type { MeterProvider as ApiMeterProvider, TracerProvider } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToMilliseconds } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { LLM_METER } from './semconv.js';

interface TelemetrySetup {
  tracerProvider: TracerProvider;
  meterProvider: ApiMeterProvider;
  /** Where spans go, in words, for the CLI to print. */
  destination: string;
  shutdown(): Promise<void>;
}

/**
 * Providers for the CLI: spans to OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, else a compact line per span on the console.
 */
export function setupTelemetry(options: {
  serviceName: string;
  env?: NodeJS.ProcessEnv;
  write?: (line: string) => void;
  quiet?: boolean;
}): TelemetrySetup {
  const env = options.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? options.serviceName });
  const processors: SpanProcessor[] = [];
  let destination = 'nowhere';
  if (endpoint) {
    const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${endpoint.replace(/\/$/, '')}/v1/traces`;
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url })));
    destination = `OTLP ${url}`;
  } else if (!options.quiet) {
    processors.push(
      new SimpleSpanProcessor(compactConsoleExporter(options.write ?? ((l) => console.log(l)))),
    );
    destination = 'console';
  }
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: processors });
  const meterProvider = new MeterProvider({ resource });
  return {
    tracerProvider,
    meterProvider,
    destination,
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** One line per span: enough to see the waterfall without a trace viewer. */
function compactConsoleExporter(write: (line: string) => void): SpanExporter {
  return {
    export(spans: ReadableSpan[], done) {
      for (const s of spans) {
        const ms = hrTimeToMilliseconds(s.duration).toFixed(1);
        const indent = s.parentSpanContext ? '    ' : '  ';
        const source = s.attributes[LLM_METER.componentSource];
        const extra = source ? ` (${source})` : '';
        write(`${indent}span ${s.name} ${ms} ms trace=${s.spanContext().traceId.slice(0, 8)}${extra}`);
      }
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: () => Promise.resolve(),
  };
}
