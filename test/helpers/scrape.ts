/**
 * One source's instruments on a provider of their own, scraped as `GET /metrics` would serve
 * them: for the tests of src/telemetry/instruments/*, which feed each source a fake stats object.
 */
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { createRegistry, type Registry } from '../../src/telemetry/instruments/register.js';
import { SCOPE } from '../../src/telemetry/semconv.js';
import { type Exposition, parseExposition } from './exposition.js';

export interface Scrape {
  text: string;
  exposition: Exposition;
  /** The `# HELP` and `# TYPE` lines in order, without `target_info`'s. */
  families: string[];
  /** Each sample as `name{label="value",…}` without the scope labels, in order. */
  series: string[];
  /** Collection errors (a producer that failed). */
  errors: unknown[];
}

export interface SourceUnderTest {
  scrape(): Promise<Scrape>;
  /** Removes the callbacks the source registered. */
  stop(): void;
  /** What the registry logged. */
  logged: string[];
  shutdown(): Promise<void>;
}

const SCOPE_LABELS = new Set(['otel_scope_name', 'otel_scope_version']);

export function observeSource(
  register: (registry: Registry) => void,
  metricProducers: MetricProducer[] = [],
): SourceUnderTest {
  const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'llm-meter-test' }),
    readers: [exporter],
  });
  const logged: string[] = [];
  const { registry, stop } = createRegistry(provider.getMeter(SCOPE.name, SCOPE.version), (message) =>
    logged.push(message),
  );
  register(registry);
  return {
    async scrape() {
      const { resourceMetrics, errors } = await exporter.collect();
      const text = new PrometheusSerializer().serialize(resourceMetrics);
      const exposition = parseExposition(text);
      return {
        text,
        exposition,
        families: text
          .split('\n')
          .filter((line) => /^# (HELP|TYPE) /.test(line) && !line.includes(' target_info')),
        series: exposition.samples
          .filter((s) => s.name !== 'target_info')
          .map((s) => {
            const labels = Object.entries(s.labels)
              .filter(([k]) => !SCOPE_LABELS.has(k))
              .map(([k, v]) => `${k}="${v}"`);
            return labels.length > 0 ? `${s.name}{${labels.join(',')}}` : s.name;
          }),
        errors,
      };
    },
    stop,
    logged,
    shutdown: () => provider.shutdown(),
  };
}
