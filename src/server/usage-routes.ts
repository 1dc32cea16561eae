/**
 * The usage and health routes, as a route table: app.ts registers them and openapi.ts
 * documents them from the same entries.
 */
import type { UsageStore } from '../store/types.js';
import { streamCsv } from './csv.js';
import { eventsQuery, summaryQuery, timeseriesQuery } from './query.js';
import { schemaRef as ref } from './schemas.js';
import { defineRoute, type RouteDef, type RouteResponse } from './types.js';

const json = (description: string, schema: string): RouteResponse => ({ description, schema: ref(schema) });
const failures = {
  400: json('Invalid query: the message and `field` name the parameter.', 'Error'),
  401: json('Missing or invalid bearer token (when the server has one).', 'Error'),
};

export function usageRoutes(store: UsageStore): RouteDef[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/usage/summary',
      summary: 'Requests, errors, tokens, cost and latency percentiles, grouped and filtered.',
      query: summaryQuery,
      responses: { 200: json('One row per group, and the totals.', 'SummaryResult'), ...failures },
      async handler({ res, query }) {
        res.json(await store.summary(query));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/usage/events',
      summary: 'Raw calls, newest first, a page at a time; `format=csv` streams them all.',
      query: eventsQuery,
      responses: {
        200: {
          description: 'A page of events (JSON), or every matching event (CSV).',
          schema: ref('EventsPage'),
          content: { 'text/csv': { type: 'string', description: 'A header line, then one line per event.' } },
        },
        ...failures,
      },
      async handler({ res, query }) {
        if (query.format === 'csv') {
          await streamCsv(res, store.eventsIterator(query));
          return;
        }
        res.json(await store.events(query));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/usage/timeseries',
      summary: 'One metric per time bucket, one series per group, for plots.',
      query: timeseriesQuery,
      responses: { 200: json('Series with every bucket of the range.', 'TimeseriesResult'), ...failures },
      async handler({ res, query }) {
        res.json(await store.timeseries(query));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/healthz',
      summary: 'Liveness: the process answers.',
      auth: false,
      responses: { 200: json('Alive.', 'Status') },
      handler({ res }) {
        res.json({ status: 'ok' });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/readyz',
      summary: 'Readiness: the database answers.',
      auth: false,
      responses: { 200: json('Ready.', 'Status'), 503: json('The database does not answer.', 'Status') },
      async handler({ res }) {
        const ready = await store.ping().catch(() => false);
        res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable' });
      },
    }),
  ];
}
