/**
 * `GET /metrics`: Prometheus exposition of the meter's OpenTelemetry metrics. The server only
 * serves the text; src/telemetry/prometheus.ts makes it (createPrometheusMetrics()), so no
 * OpenTelemetry code lives here.
 */
import { defineRoute, type RouteModule } from './types.js';

/** What `/metrics` serves. `createPrometheusMetrics()`'s result is one. */
export interface MetricsSource {
  /** The exposition's `Content-Type` (Prometheus text format 0.0.4). */
  readonly contentType: string;
  scrape(): Promise<string>;
}

export function metricsRoutes(metrics: MetricsSource): RouteModule {
  return {
    routes: [
      defineRoute({
        method: 'get',
        path: '/metrics',
        summary: 'Prometheus exposition: GenAI client metrics, cost, calls, budget gauges, store counters.',
        // Budget names and spend are not public: behind the token when the server has one
        // (Prometheus sends it with `authorization: { credentials: … }` in its scrape config).
        auth: true,
        responses: {
          200: {
            description: 'Prometheus text format 0.0.4.',
            content: { 'text/plain': { type: 'string' } },
          },
          401: { description: 'Missing or invalid bearer token (when the server has one).' },
        },
        async handler({ res }) {
          const body = await metrics.scrape();
          res.setHeader('Content-Type', metrics.contentType);
          res.setHeader('Cache-Control', 'no-store');
          res.send(body);
        },
      }),
    ],
  };
}
