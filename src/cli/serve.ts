import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMeter } from '../meter.js';
import { isLoopbackAddress } from '../net/loopback.js';
import { bindRefusal, createServer, defaultHost } from '../server/index.js';
import { startSimulator } from '../sim/index.js';
import { createPrometheusMetrics } from '../telemetry/prometheus.js';
import { setupTelemetry } from '../telemetry/setup.js';
import { DB_FLAG, dbPath, parse, portNumber, str, UsageError } from './args.js';
import { sendDemoCall, workload } from './demo.js';
import { printable } from './terminal.js';

const SERVE_HELP = `Usage: llm-meter serve [--port 8787] [--host HOST] [--db PATH] [--api-token TOKEN]
                       [--insecure-no-auth] [--demo]

Runs the reporting server: the dashboard at /, the JSON API under /v1 (usage, budgets,
alerts), /metrics for Prometheus, /healthz, /readyz and /openapi.json.
  --api-token  required bearer token for /v1 (or $LLM_METER_API_TOKEN). With one the server
               listens on every interface (0.0.0.0) unless --host says otherwise.
  --host       where to listen. Without a token only a loopback host (127.0.0.1, the
               default; ::1; localhost) is accepted, and the server answers loopback clients
               and Host names only.
  --insecure-no-auth
               listen beyond loopback without a token anyway: anyone who can reach the
               server can read usage and change budgets and prices.
  --demo       also start the provider simulator and send metered demo traffic continuously.
Spans go over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
`;

/** Where the server really is: `0.0.0.0` and `::` mean every interface. */
function describeBound({ address, port }: AddressInfo): { url: string; where: string } {
  const every = address === '0.0.0.0' || address === '::';
  const host = every ? 'localhost' : address.includes(':') ? `[${address}]` : address;
  const shown = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/`,
    where: every ? `every interface (${shown}:${port})` : `${shown}:${port} only`,
  };
}

export async function serveCommand(args: string[], out: (s: string) => void): Promise<void> {
  const { values } = parse(args, {
    ...DB_FLAG,
    port: { type: 'string' },
    host: { type: 'string' },
    'api-token': { type: 'string' },
    'insecure-no-auth': { type: 'boolean' },
    demo: { type: 'boolean' },
  });
  if (values.help) return out(SERVE_HELP);
  const port = portNumber(values, 'port') ?? Number(process.env.PORT ?? 8787);
  const flagToken = str(values, 'api-token');
  if (flagToken !== undefined && flagToken.trim() === '') {
    throw new UsageError('Expected `--api-token` to be a non-empty token.');
  }
  // An empty $LLM_METER_API_TOKEN (an unset variable in a compose file) is no token.
  const apiToken = flagToken ?? (process.env.LLM_METER_API_TOKEN?.trim() || undefined);
  const insecureNoAuth = values['insecure-no-auth'] === true;
  const host = str(values, 'host') ?? defaultHost({ apiToken });
  if (bindRefusal(host, { apiToken, insecureNoAuth })) {
    throw new UsageError(
      `Refusing \`--host ${host}\` without \`--api-token\`: the usage, budget and price routes ` +
        'would be open to every machine that can reach it. Pass `--api-token TOKEN` (or set ' +
        'LLM_METER_API_TOKEN), use a loopback `--host` (127.0.0.1, ::1, localhost), or add ' +
        '`--insecure-no-auth` to accept that.',
    );
  }
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
  const app = createServer(meter, {
    apiToken,
    insecureNoAuth,
    metrics: prometheus,
    logger: (message) => process.stderr.write(`llm-meter serve: WARNING: ${printable(message)}\n`),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
  const bound = server.address() as AddressInfo;
  const { url, where } = describeBound(bound);
  out(`llm-meter serving ${url} (listening on ${where}; database ${printable(path)})\n`);
  if (apiToken) out('/v1 and /metrics need the bearer token\n');
  else if (isLoopbackAddress(bound.address))
    out('no --api-token: only clients on this machine can connect\n');
  else out('no --api-token and --insecure-no-auth: /v1 is open to every client that can reach it\n');

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
