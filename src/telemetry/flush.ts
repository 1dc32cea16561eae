import { type MeterProvider, metrics, type TracerProvider, trace } from '@opentelemetry/api';

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
  await Promise.all(targets.map((t) => t?.forceFlush?.()));
}
