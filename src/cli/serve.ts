import type { Server } from 'node:http';
import { createMeter } from '../meter.js';
import { createServer, defaultHost } from '../server/index.js';
import { startSimulator } from '../sim/index.js';
import { createPrometheusMetrics } from '../telemetry/prometheus.js';
import { setupTelemetry } from '../telemetry/setup.js';
import { DB_FLAG, dbPath, parse, portNumber, str } from './args.js';
import { sendDemoCall, workload } from './demo.js';

export const SERVE_HELP = `Usage: llm-meter serve [--port 8787] [--host HOST] [--db PATH] [--api-token TOKEN] [--demo]

Runs the reporting server: the dashboard at /, the JSON API under /v1 (usage, budgets,
alerts), /metrics for Prometheus, /healthz, /readyz and /openapi.json.
  --api-token  required bearer token for /v1 (or $LLM_METER_API_TOKEN). Without one the
               server listens on 127.0.0.1 only.
  --demo       also start the provider simulator and send metered demo traffic continuously.
Spans go over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
`;

export async function serveCommand(args: string[], out: (s: string) => void): Promise<void> {
  const { values } = parse(args, {
    ...DB_FLAG,
    port: { type: 'string' },
    host: { type: 'string' },
    'api-token': { type: 'string' },
    demo: { type: 'boolean' },
  });
  if (values.help) return out(SERVE_HELP);
  const port = portNumber(values, 'port') ?? Number(process.env.PORT ?? 8787);
  const apiToken = str(values, 'api-token') ?? process.env.LLM_METER_API_TOKEN;
  const path = dbPath(values);
  const telemetry = setupTelemetry({ serviceName: 'llm-meter', quiet: true });
  const prometheus = createPrometheusMetrics();
  const meter = createMeter({
    database: path,
    tracerProvider: telemetry.tracerProvider,
    meterProvider: prometheus.meterProvider,
    allowPrivateWebhooks: process.env.LLM_METER_ALLOW_PRIVATE_WEBHOOKS === '1',
  });
  const stopObserving = prometheus.observe(meter);
  const app = createServer(meter, { apiToken, metrics: prometheus });
  const host = str(values, 'host') ?? defaultHost({ apiToken });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
  out(`llm-meter serving http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/ (database ${path})\n`);
  if (!apiToken) out('no --api-token: listening on 127.0.0.1 only\n');

  let stopDemo = async () => {};
  if (values.demo) {
    const sim = await startSimulator();
    const calls = workload(60);
    let i = 0;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      const batch = [calls[i++ % calls.length]!, calls[i++ % calls.length]!];
      void Promise.all(batch.map((c) => sendDemoCall(meter, sim.url, c))).finally(() => {
        busy = false;
      });
    }, 1_500);
    out(`demo traffic: simulator at ${sim.url}, two calls every 1.5 s\n`);
    stopDemo = async () => {
      clearInterval(timer);
      await sim.close();
    };
  }

  // SIGTERM loses nothing: stop accepting, let calls finish, flush the store and exporters.
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  out('shutting down\n');
  await stopDemo();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  stopObserving();
  await meter.shutdown();
  await prometheus.shutdown();
  await telemetry.shutdown();
}
