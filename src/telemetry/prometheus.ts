/**
 * Prometheus exposition for `GET /metrics`, from the OpenTelemetry metrics SDK.
 *
 * The meter records its GenAI and cost metrics on whatever MeterProvider it is given
 * (metrics.ts); this file makes one whose reader is the OpenTelemetry Prometheus exporter,
 * kept from starting its own HTTP server so the app's Express route serves the text instead
 * (same port, same bearer token). Budget figures and the meter's own counters are read at
 * scrape time, so a scrape always shows the current period's spend.
 *
 * Each source of figures (the meter's own counters, the store, the budgets, the gateway)
 * registers its instruments, and names them, in its own module under ./instruments/; this file
 * makes the provider, exporter and serializer and wires the sources a caller hands `observe`.
 *
 *   const prometheus = createPrometheusMetrics();
 *   const meter = createMeter({ meterProvider: prometheus.meterProvider });
 *   prometheus.observe(meter);
 *   createServer(meter, { metrics: prometheus });
 *
 * Names as the exporter writes them: dots become underscores, monotonic sums get `_total`,
 * histograms `_bucket`/`_sum`/`_count`; this exporter version adds no unit suffix
 * (`llm_meter.cost`, unit USD → `llm_meter_cost_total`).
 */
import { createServer, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { type IMetricReader, MeterProvider } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { InvalidOptionError } from '../errors/errors.js';
import { bearerMatcher } from '../net/bearer.js';
import { isLoopbackBindHost } from '../net/loopback.js';
import { acceptsHost, crossSiteHeader } from '../net/unauthenticated.js';
import { bool, nonEmptyString } from '../options.js';
import {
  type BudgetSource,
  createBudgetGauges,
  observeSettling,
  type SettleFigures,
} from './instruments/budgets.js';
import { type GatewaySource, observeGateway } from './instruments/gateway.js';
import { type MeterFigures, observeMeterStats } from './instruments/meter.js';
import { createRegistry } from './instruments/register.js';
import { observeStore, type StoreSource } from './instruments/store.js';
import { SCOPE } from './semconv.js';

/** Prometheus text format 0.0.4: what Prometheus 2 and 3 both parse without a fallback. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * The parts of a meter that `observe` reads; `createMeter()`'s result satisfies it. Each source
 * is optional and registers its own instruments (./instruments/).
 */
interface ObservedMeter {
  /** A running gateway (`startProxy()`): its requests, circuits and rate-limit budgets. */
  readonly gateway?: GatewaySource | null;
  readonly budgets?: (BudgetSource & { stats?(): SettleFigures }) | null;
  readonly store?: StoreSource | null;
  stats?(): MeterFigures;
}

interface PrometheusMetricsOptions {
  /** Default: `service.name` = `llm-meter`. Appears as the `target_info` series. */
  resource?: Resource;
  /** More readers on the same provider, e.g. an OTLP PeriodicExportingMetricReader. */
  readers?: IMetricReader[];
  /** How long a scrape waits for observable callbacks (budgets read SQLite). Default 10 s. */
  collectTimeoutMs?: number;
  /** Diagnostic logger for collection errors. Default: silent. */
  logger?: (message: string, error?: unknown) => void;
}

export interface PrometheusMetrics {
  /** Pass to `createMeter({ meterProvider })`. */
  readonly meterProvider: MeterProvider;
  /** The `Content-Type` of what `scrape()` returns. */
  readonly contentType: string;
  /**
   * Budget gauges (spent, limit, forecast in USD, per budget) and the meter's own counters,
   * read at each scrape. Returns a function that stops observing.
   */
  observe(meter: ObservedMeter): () => void;
  /** Collect and serialize: the body of `GET /metrics`. */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

export function createPrometheusMetrics(options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const log = options.logger ?? (() => {});
  const resource = options.resource ?? resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'llm-meter' });
  const budgetGauges = createBudgetGauges(resource);
  // preventServerStart: the Express app serves the text, on its port and behind its token.
  const exporter = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [budgetGauges.producer],
  });
  const serializer = new PrometheusSerializer();
  const meterProvider = new MeterProvider({ resource, readers: [exporter, ...(options.readers ?? [])] });
  const meter = meterProvider.getMeter(SCOPE.name, SCOPE.version);
  const timeoutMillis = options.collectTimeoutMs ?? 10_000;

  function observe(source: ObservedMeter): () => void {
    const { registry, stop } = createRegistry(meter, log);
    const stopBudgetGauges = source.budgets ? budgetGauges.add(source.budgets) : () => {};
    // In this order, which is the order of the families in the exposition.
    if (source.store) observeStore(registry, source.store);
    const stats = source.stats?.bind(source);
    if (stats) observeMeterStats(registry, stats);
    const settleStats = source.budgets?.stats?.bind(source.budgets);
    if (settleStats) observeSettling(registry, settleStats);
    if (source.gateway) observeGateway(registry, source.gateway);
    return () => {
      stopBudgetGauges();
      stop();
    };
  }

  return {
    meterProvider,
    contentType: PROMETHEUS_CONTENT_TYPE,
    observe,
    async scrape() {
      const { resourceMetrics, errors } = await exporter.collect({ timeoutMillis });
      for (const error of errors) log('llm-meter: metrics collection error', error);
      return serializer.serialize(resourceMetrics);
    },
    shutdown: () => meterProvider.shutdown(),
  };
}

interface ServeMetricsOptions {
  /**
   * Scrapes must send `Authorization: Bearer <token>` (Prometheus: `authorization: { credentials }`
   * in the scrape config); the port may then listen anywhere, and any `Host` is answered.
   */
  token?: string | undefined;
  /**
   * Without a token the port is for this machine only: `host` must be a loopback host, and only
   * loopback `Host` names are answered (a page that rebinds its DNS name to 127.0.0.1 could
   * otherwise read budget names and spend). `true` listens beyond loopback without a token
   * anyway, with a warning on `logger`, answering IP-literal `Host`s too. Default false.
   */
  insecureNoAuth?: boolean | undefined;
  /** Where the warning goes. Default: `process.emitWarning`. */
  logger?: ((message: string) => void) | undefined;
}

function refuse(res: ServerResponse, status: number, text: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'cache-control': 'no-store', ...headers }).end(text);
}

/**
 * A listener for `GET /metrics` and nothing else, for a process that has no HTTP API of its own
 * (the gateway serves it on a port apart from the one its clients use). Budget names and spend
 * are not public: behind `token`, or on loopback for local clients only (src/net/).
 */
export async function serveMetrics(
  prometheus: PrometheusMetrics,
  port: number,
  host: string,
  options: ServeMetricsOptions = {},
): Promise<Server> {
  const token = nonEmptyString('token', options.token, undefined);
  const insecureNoAuth = bool('insecureNoAuth', options.insecureNoAuth, false);
  if (token === undefined && !isLoopbackBindHost(host)) {
    if (!insecureNoAuth) {
      throw new InvalidOptionError(
        `Refusing to serve metrics on \`host\` ${JSON.stringify(host)} without a \`token\`: budget names ` +
          'and spend would be readable by every machine that can reach it. Set `token`, use a loopback ' +
          '`host` (127.0.0.1, ::1, localhost), or pass `insecureNoAuth: true` to accept that.',
      );
    }
    const warn = options.logger ?? ((m: string) => process.emitWarning(m, 'LlmMeterWarning'));
    warn(
      `llm-meter metrics: WARNING: serving metrics on ${JSON.stringify(host)} with no token ` +
        '(insecureNoAuth): anyone who can reach it can read budget names and spend.',
    );
  }
  const authorized = token === undefined ? null : bearerMatcher(token);
  const server = createServer((req, res) => {
    // Who may ask comes before what is asked: without the token, no path is worth probing.
    if (authorized) {
      if (!authorized(req.headers.authorization)) {
        refuse(res, 401, 'Missing or invalid bearer token.\n', {
          'www-authenticate': 'Bearer realm="llm-meter"',
        });
        return;
      }
    } else if (!acceptsHost(req.headers.host, insecureNoAuth)) {
      const allowed = insecureNoAuth ? 'localhost or an IP address' : 'a loopback name';
      refuse(res, 421, `The Host header must be ${allowed}: this port has no token.\n`);
      return;
    } else if (crossSiteHeader(req.headers) !== null) {
      refuse(res, 403, 'A request from another site is refused: this port has no token.\n');
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      refuse(res, 404, 'Not found: this port serves GET /metrics only.\n');
      return;
    }
    prometheus.scrape().then(
      (body) =>
        res.writeHead(200, { 'content-type': prometheus.contentType, 'cache-control': 'no-store' }).end(body),
      () => refuse(res, 500, 'metrics collection failed\n'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
