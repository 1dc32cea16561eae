/**
 * The reporting server: an Express 5 app built from route tables. Every route's input goes
 * through its zod schemas first; every failure leaves as `{ error: { type, message, field? } }`
 * without a stack trace or SQL.
 */
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { z } from 'zod';
import { InvalidOptionError } from '../errors/errors.js';
import { bool, nonEmptyString } from '../options.js';
import { isInvalidQueryError } from '../store/errors.js';
import { bearerAuth } from './auth.js';
import { budgetRoutes } from './budget-routes.js';
import { dashboardAssets, dashboardRoutes } from './dashboard.js';
import { HttpError, invalidRequest, isHttpError } from './http-error.js';
import { listenArgs } from './listen.js';
import { type MetricsSource, metricsRoutes } from './metrics-routes.js';
import { buildOpenApi } from './openapi.js';
import { perimeter } from './perimeter.js';
import { USAGE_SCHEMAS } from './schemas.js';
import type { RouteDef, RouteModule, ServerMeter, ServerOptions } from './types.js';
import { usageRoutes } from './usage-routes.js';

/** `/v1/budgets/{id}` (OpenAPI) → `/v1/budgets/:id` (Express). */
function expressPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

const isSecured = (route: RouteDef) => route.auth ?? route.path.startsWith('/v1/');

/** The first issue, as the 400 a client can act on: which parameter, and what is wrong. */
function toHttpError(error: z.ZodError, where: 'query' | 'params' | 'body'): HttpError {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const noun = where === 'body' ? 'field' : 'query parameter';
    return invalidRequest(key, `Unknown ${noun} \`${key}\`.`);
  }
  const field = issue.path.map(String).join('.') || where;
  return invalidRequest(field, `Invalid \`${field}\`: ${issue.message}.`);
}

function parse<T extends z.ZodType>(
  schema: T | undefined,
  input: unknown,
  where: 'query' | 'params' | 'body',
) {
  if (!schema) return undefined;
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw toHttpError(result.error, where);
  return result.data;
}

function handle(route: RouteDef): RequestHandler {
  return async (req, res) => {
    const query = parse(route.query, req.query, 'query');
    const params = parse(route.params, req.params, 'params');
    const body = parse(route.body, req.body, 'body');
    try {
      await route.handler({ req, res, query, params, body });
    } catch (error) {
      if (isInvalidQueryError(error)) throw invalidRequest(error.field, error.message);
      throw error;
    }
  };
}

/** body-parser's errors carry a status and a `type`; their messages can quote the body. */
const BODY_ERRORS: Record<string, string> = {
  'entity.too.large': 'Request body too large.',
  'entity.parse.failed': 'Request body is not valid JSON.',
  'encoding.unsupported': 'Unsupported request body encoding.',
  'charset.unsupported': 'Unsupported request body charset.',
  'request.aborted': 'Request aborted.',
  'request.size.invalid': 'Request body length does not match `Content-Length`.',
};

/**
 * The JSON body parser, whose refusals name the body. Some of them (zlib and brotli failing to
 * inflate) come without a `type`, so they are told apart by where they happen, not by their shape.
 */
function jsonBody(limit: string): RequestHandler {
  const parse = express.json({ limit });
  return (req, res, next) =>
    parse(req, res, (error?: unknown) => {
      const status = (error as { status?: unknown } | undefined)?.status;
      if (!error || typeof status !== 'number' || status < 400 || status >= 500) {
        next(error);
        return;
      }
      const type = (error as { type?: unknown }).type;
      const known = typeof type === 'string' ? BODY_ERRORS[type] : undefined;
      const message = known ?? 'Request body could not be read as its `Content-Encoding` says.';
      next(new HttpError(status, 'invalid_request', message, 'body'));
    });
}

const errorHandler: ErrorRequestHandler = (error, _req, res, _next) => {
  if (res.headersSent) {
    // A streamed response failed midway: all that can be said is to cut it short.
    res.destroy();
    return;
  }
  if (isHttpError(error)) {
    res.status(error.status).json(error.toJSON());
    return;
  }
  const status = (error as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // The router's own 400: a path parameter that is not valid percent-encoding.
    const said =
      error instanceof URIError
        ? { message: 'The request path is not valid percent-encoding.', field: 'path' }
        : { message: 'Invalid request.' };
    res.status(status).json({ error: { type: 'invalid_request', ...said } });
    return;
  }
  res.status(500).json({ error: { type: 'internal', message: 'Internal error.' } });
};

/**
 * `metrics`: what `GET /metrics` serves, e.g. `createPrometheusMetrics()` from
 * src/telemetry/prometheus.ts, whose `meterProvider` the meter was created with. Without it
 * there is no /metrics route.
 */
type AppOptions = ServerOptions & { metrics?: MetricsSource | undefined };

export function createServer(meter: ServerMeter, options: AppOptions = {}): Express {
  const apiToken = nonEmptyString('apiToken', options.apiToken, undefined);
  const insecureNoAuth = bool('insecureNoAuth', options.insecureNoAuth, false);
  const warn = options.logger ?? ((message: string) => process.emitWarning(message, 'LlmMeterWarning'));
  if (!meter?.store) {
    throw new InvalidOptionError(
      'Expected a meter with a usage `store` (createMeter without `database: false`).',
    );
  }
  const store = meter.store;

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(perimeter({ tokenConfigured: apiToken !== undefined, insecureNoAuth }));
  // Node's default is every interface; without a token that would open /v1 to the network.
  const listen = app.listen.bind(app) as (...args: unknown[]) => ReturnType<Express['listen']>;
  app.listen = ((...args: unknown[]) =>
    listen(...listenArgs(args, { apiToken, insecureNoAuth }, warn))) as Express['listen'];

  let openapi: unknown;
  const docs: RouteModule = {
    routes: [
      {
        method: 'get',
        path: '/openapi.json',
        summary: 'This document.',
        auth: false,
        responses: { 200: { description: 'OpenAPI 3.1.', schema: { type: 'object' } } },
        handler({ res }) {
          res.json(openapi);
        },
      },
    ],
  };
  const modules: RouteModule[] = [
    { routes: usageRoutes(store), schemas: USAGE_SCHEMAS },
    ...(meter.budgets ? [budgetRoutes(meter.budgets)] : []),
    ...(options.metrics ? [metricsRoutes(options.metrics)] : []),
    ...(options.modules ?? []),
    dashboardRoutes(),
    docs,
  ];
  openapi = buildOpenApi(modules, { secured: apiToken !== undefined, isSecured });

  if (apiToken !== undefined) app.use('/v1', bearerAuth(apiToken));
  app.use('/v1', jsonBody(options.jsonLimit ?? '100kb'));
  for (const route of modules.flatMap((module) => module.routes)) {
    const path = expressPath(route.path);
    if (apiToken !== undefined && isSecured(route) && !route.path.startsWith('/v1/')) {
      app[route.method](path, bearerAuth(apiToken), handle(route));
    } else {
      app[route.method](path, handle(route));
    }
  }
  app.use(dashboardAssets());
  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', 'Not found.')));
  app.use(errorHandler);
  return app;
}
