// The processes bench/gateway.mjs measures, each in its own process so the load generator's CPU
// time is not charged to them. Prints one JSON line ({ url, pid }) when ready, serves until
// stdin closes, then prints one JSON line of stats and exits.
//
//   node bench/gateway-server.mjs sim
//   node bench/gateway-server.mjs gateway <upstream base URL> <sqlite path | none>
import { createInterface } from 'node:readline';
import { createMeter } from '../dist/index.js';
import { startProxy } from '../dist/proxy/index.js';
import { startSimulator } from '../dist/sim/index.js';
import { sdkProviders } from './lib/otel.mjs';

const [role, upstream, database] = process.argv.slice(2);
let close;
let stats = () => ({});

if (role === 'sim') {
  const sim = await startSimulator({ defaults: { outputTokens: 16 } });
  close = () => sim.close();
  stats = () => ({ calls: sim.calls.length });
  // The simulator keeps every call for tests; a benchmark run would grow it without bound.
  setInterval(() => sim.reset(), 1000).unref();
  process.stdout.write(`${JSON.stringify({ url: sim.url, pid: process.pid })}\n`);
} else if (role === 'gateway') {
  // A production-like meter: a SQLite store, spans through a batch processor and metrics through
  // a periodic reader (both to no-op exporters: the export itself is not what is measured).
  const { tracerProvider, meterProvider } = await sdkProviders();
  let records = 0;
  const meter = createMeter({
    database: database === 'none' ? false : database,
    tracerProvider,
    meterProvider,
    onRecord: () => {
      records++;
    },
  });
  const gw = await startProxy({ port: 0, upstreams: { openai: upstream }, meter });
  close = async () => {
    await gw.close();
    await meter.shutdown();
  };
  stats = () => ({ records, ...gw.stats(), store: meter.store?.stats() });
  process.stdout.write(`${JSON.stringify({ url: gw.url, pid: process.pid })}\n`);
} else {
  process.stderr.write(`unknown role "${role}"\n`);
  process.exit(2);
}

createInterface({ input: process.stdin }).on('close', async () => {
  const s = stats();
  await close();
  process.stdout.write(`${JSON.stringify(s)}\n`);
  process.exit(0);
});
