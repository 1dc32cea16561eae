export { createServer, defaultHost } from './app.js';
export { HttpError, invalidRequest, isHttpError } from './http-error.js';
export type {
  HttpMethod,
  JsonSchema,
  RouteContext,
  RouteDef,
  RouteModule,
  RouteResponse,
  ServerMeter,
  ServerOptions,
} from './types.js';
export { defineRoute } from './types.js';
