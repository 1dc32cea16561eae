import { type MeterProvider, metrics, type TracerProvider, trace } from '@opentelemetry/api';

/** Longest flush() waits for OpenTelemetry exporters. */
const FLUSH_BOUND_MS = 5_000;

interface Flushable {
  forceFlush?: () => Promise<void>;
  getDelegate?: () => unknown;
}

/** The API's global providers are proxies; the SDK provider behind one is what flushes. */
function unwrap(provider: unknown): Flushable | null {
  let p = provider as Flushable | null;
  for (
    let i = 0;
    p && typeof p.forceFlush !== 'function' && typeof p.getDelegate === 'function' && i < 3;
    i++
  ) {
    p = p.getDelegate() as Flushable | null;
  }
  return p && typeof p.forceFlush === 'function' ? p : null;
}

export async function forceFlushProviders(
  tracerProvider?: TracerProvider,
  meterProvider?: MeterProvider,
): Promise<void> {
  const targets = [
    unwrap(tracerProvider ?? trace.getTracerProvider()),
    unwrap(meterProvider ?? metrics.getMeterProvider()),
  ];
  // A hanging collector must not hold flush() for the exporter's own timeout (OTLP: 10 s):
  // what is not exported in time stays queued in the exporter and is counted by the SDK.
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, FLUSH_BOUND_MS);
    timer.unref();
  });
  try {
    await Promise.race([Promise.all(targets.map((t) => t?.forceFlush?.())), bound]);
  } finally {
    clearTimeout(timer);
  }
}
