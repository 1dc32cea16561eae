import type { Server } from 'node:http';
import { createMeter } from '../meter.js';
import { isLoopbackBindHost } from '../net/loopback.js';
import { generateGatewayKey, startProxy } from '../proxy/index.js';
import type { ProxyOptions } from '../proxy/types.js';
import { createPrometheusMetrics, serveMetrics } from '../telemetry/prometheus.js';
import { setupTelemetry } from '../telemetry/setup.js';
import { dbPath, parse, portNumber, positiveInt, str, UsageError } from './args.js';
import { printable } from './terminal.js';

const PROXY_HELP = `Usage: llm-meter proxy [--port 8788] [--host 127.0.0.1] --upstream NAME=URL [--upstream ...]
                       [--db PATH] [--require-key --keys FILE] [--capture-content]
                       [--connect-timeout MS] [--headers-timeout MS] [--idle-timeout MS] [--timeout MS]
                       [--shutdown-grace MS] [--connections N] [--max-body BYTES]
                       [--max-client-connections N] [--max-client-body BYTES] [--max-body-in-flight BYTES]
                       [--default-max-tokens N] [--max-tool-rounds N] [--user-rpm N] [--user-tpm N]
                       [--circuit-breaker] [--rate-limit]
                       [--metrics-port N [--metrics-host HOST] [--metrics-token TOKEN]] [--insecure-no-auth]
       llm-meter proxy keygen

A metering gateway for clients in any language: point their base URL at it. Requests route by
path prefix (/NAME/...) or by the provider's own path shape (/v1/messages → anthropic,
/v1beta/... → gemini, /api/... → ollama, other /v1/... → openai). Every call is metered, stored
and checked against budgets like meter.fetch. Attribution comes from x-llm-meter-user,
-project, -feature and -tags headers, which are removed before forwarding; a gateway key's own
fields win, and its "pin" keeps headers from setting the others.
Per client (IPv4 address, IPv6 /64): --max-client-connections (default 512) and request-body bytes in
memory, --max-client-body (default 2 × --max-body); --max-body-in-flight caps all clients
together (default 8 × --max-body). Over a cap: 429 in the provider's error shape.
Default upstreams: openai=https://api.openai.com, anthropic=https://api.anthropic.com.
Without --require-key the gateway is for this machine only: --host must be a loopback host
(127.0.0.1, the default; ::1; localhost), and it answers loopback Host names only and no
cross-site browser requests, so that a web page cannot drive it.
Spans go over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set. --metrics-port serves
Prometheus /metrics (GenAI metrics, cost, the gateway's requests, circuits and rate-limit
budgets, the store's and budgets' own counters) on its own port, 127.0.0.1 unless
--metrics-host says otherwise, so that clients of the gateway cannot read it. Another
--metrics-host needs --metrics-token (or $LLM_METER_METRICS_TOKEN): scrapes then send it as a
bearer token.
  --insecure-no-auth
           listen beyond loopback without --require-key (or --metrics-token) anyway: anyone
           who can reach the gateway can make calls through it under any name, and read the
           metrics.
`;

const warn = (message: string) => process.stderr.write(`${printable(message)}\n`);

function ms(values: Record<string, unknown>, name: string): number | undefined {
  return values[name] === undefined ? undefined : positiveInt(values as never, name, 0);
}

export async function proxyCommand(args: string[], out: (s: string) => void): Promise<void> {
  if (args[0] === 'keygen') {
    out(`${generateGatewayKey()}\n`);
    return;
  }
  const { values } = parse(args, {
    db: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    upstream: { type: 'string', multiple: true },
    'require-key': { type: 'boolean' },
    keys: { type: 'string' },
    'capture-content': { type: 'boolean' },
    'connect-timeout': { type: 'string' },
    'headers-timeout': { type: 'string' },
    'idle-timeout': { type: 'string' },
    timeout: { type: 'string' },
    'shutdown-grace': { type: 'string' },
    connections: { type: 'string' },
    'max-body': { type: 'string' },
    'max-client-connections': { type: 'string' },
    'max-client-body': { type: 'string' },
    'max-body-in-flight': { type: 'string' },
    'default-max-tokens': { type: 'string' },
    'max-tool-rounds': { type: 'string' },
    'user-rpm': { type: 'string' },
    'user-tpm': { type: 'string' },
    'circuit-breaker': { type: 'boolean' },
    'rate-limit': { type: 'boolean' },
    'metrics-port': { type: 'string' },
    'metrics-host': { type: 'string' },
    'metrics-token': { type: 'string' },
    'insecure-no-auth': { type: 'boolean' },
  });
  if (values.help) return out(PROXY_HELP);
  const upstreams: Record<string, string> = {};
  for (const spec of (values.upstream as string[] | undefined) ?? []) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const url = spec.slice(eq + 1);
    if (eq <= 0 || !URL.canParse(url)) {
      throw new UsageError(
        `Expected \`--upstream\` as NAME=URL (e.g. openai=https://api.openai.com), got "${spec}".`,
      );
    }
    upstreams[name] = url;
  }
  if (Object.keys(upstreams).length === 0) {
    upstreams.openai = 'https://api.openai.com';
    upstreams.anthropic = 'https://api.anthropic.com';
  }
  if (values['require-key'] && !str(values, 'keys')) {
    throw new UsageError(
      '`--require-key` needs `--keys FILE` (a JSON map of gateway keys; see `llm-meter proxy keygen`).',
    );
  }
  const host = str(values, 'host') ?? '127.0.0.1';
  const insecureNoAuth = values['insecure-no-auth'] === true;
  if (!values['require-key'] && !insecureNoAuth && !isLoopbackBindHost(host)) {
    throw new UsageError(
      `Refusing \`--host ${host}\` without \`--require-key\`: every machine that can reach the gateway ` +
        'could make calls through it and record them under any name. Pass `--require-key --keys FILE`, ' +
        'use a loopback `--host` (127.0.0.1, ::1, localhost), or add `--insecure-no-auth` to accept that.',
    );
  }
  const metricsHost = str(values, 'metrics-host') ?? '127.0.0.1';
  const flagToken = str(values, 'metrics-token');
  if (flagToken !== undefined && flagToken.trim() === '') {
    throw new UsageError('Expected `--metrics-token` to be a non-empty token.');
  }
  // An empty $LLM_METER_METRICS_TOKEN (an unset variable in a compose file) is no token.
  const metricsToken = flagToken ?? (process.env.LLM_METER_METRICS_TOKEN?.trim() || undefined);
  if (!metricsToken && !insecureNoAuth && !isLoopbackBindHost(metricsHost)) {
    throw new UsageError(
      `Refusing \`--metrics-host ${metricsHost}\` without \`--metrics-token\`: budget names and spend ` +
        'would be readable by every machine that can reach it. Pass `--metrics-token TOKEN` (or set ' +
        'LLM_METER_METRICS_TOKEN), use a loopback `--metrics-host`, or add `--insecure-no-auth` to accept that.',
    );
  }
  const timeouts: NonNullable<ProxyOptions['timeouts']> = {};
  const connectMs = ms(values, 'connect-timeout');
  const headersMs = ms(values, 'headers-timeout');
  const idleMs = ms(values, 'idle-timeout');
  const totalMs = ms(values, 'timeout');
  if (connectMs !== undefined) timeouts.connectMs = connectMs;
  if (headersMs !== undefined) timeouts.headersMs = headersMs;
  if (idleMs !== undefined) timeouts.idleMs = idleMs;
  if (totalMs !== undefined) timeouts.totalMs = totalMs;
  const guards: NonNullable<ProxyOptions['guards']> = {};
  if (values['default-max-tokens']) guards.defaultMaxTokens = positiveInt(values, 'default-max-tokens', 0);
  if (values['max-tool-rounds']) guards.maxToolRounds = positiveInt(values, 'max-tool-rounds', 0);
  if (values['user-rpm'] || values['user-tpm']) {
    guards.perUser = {};
    if (values['user-rpm']) guards.perUser.requests = positiveInt(values, 'user-rpm', 0);
    if (values['user-tpm']) guards.perUser.tokens = positiveInt(values, 'user-tpm', 0);
  }
  const telemetry = setupTelemetry({ serviceName: 'llm-meter-gateway', quiet: true });
  const metricsPort = portNumber(values, 'metrics-port') ?? null;
  const prometheus = metricsPort === null ? null : createPrometheusMetrics();
  const meter = createMeter({
    database: dbPath(values),
    captureContent: values['capture-content'] === true,
    tracerProvider: telemetry.tracerProvider,
    meterProvider: prometheus?.meterProvider ?? telemetry.meterProvider,
  });
  const options: ProxyOptions = {
    port: portNumber(values, 'port') ?? 8788,
    host,
    upstreams,
    meter,
    requireKey: values['require-key'] === true,
    insecureNoAuth,
    // Diagnostics (upstream failures, the insecureNoAuth warning) never carry keys or bodies.
    logger: warn,
    timeouts,
    guards,
  };
  const keysFile = str(values, 'keys');
  if (keysFile) options.keysFile = keysFile;
  const grace = ms(values, 'shutdown-grace');
  if (grace !== undefined) options.shutdownGraceMs = grace;
  if (values.connections) options.connections = positiveInt(values, 'connections', 256);
  if (values['max-body']) options.maxRequestBodyBytes = positiveInt(values, 'max-body', 0);
  if (values['max-client-connections'])
    options.maxConnectionsPerClient = positiveInt(values, 'max-client-connections', 0);
  if (values['max-client-body']) options.maxBodyBytesPerClient = positiveInt(values, 'max-client-body', 0);
  if (values['max-body-in-flight'])
    options.maxBodyBytesInFlight = positiveInt(values, 'max-body-in-flight', 0);
  if (values['circuit-breaker']) options.circuitBreaker = {};
  if (values['rate-limit']) options.rateLimiter = {};
  const proxy = await startProxy(options);
  out(
    printable(
      `llm-meter proxy on ${proxy.url} → ${Object.entries(upstreams)
        .map(([n, u]) => `${n}=${u}`)
        .join(', ')}`,
    ) + '\n',
  );
  let metricsServer: Server | null = null;
  const stopObserving: (() => void)[] = [];
  if (prometheus && metricsPort !== null) {
    stopObserving.push(prometheus.observe(meter), prometheus.observe({ gateway: proxy }));
    metricsServer = await serveMetrics(prometheus, metricsPort, metricsHost, {
      token: metricsToken,
      insecureNoAuth,
      logger: warn,
    });
    const { port } = metricsServer.address() as { port: number };
    const shown = metricsHost.includes(':') ? `[${metricsHost}]` : metricsHost;
    out(`${printable(`metrics on http://${shown}:${port}/metrics`)}\n`);
    if (metricsToken) out('/metrics needs the bearer token\n');
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  out('draining in-flight calls, then flushing the store\n');
  await proxy.close();
  for (const stop of stopObserving) stop();
  if (metricsServer) await new Promise<void>((resolve) => metricsServer!.close(() => resolve()));
  await meter.shutdown();
  await prometheus?.shutdown();
  await telemetry.shutdown();
}
