export { createServer } from './app.js';
export { HttpError, invalidRequest, isHttpError } from './http-error.js';
export { bindRefusal, defaultHost } from './listen.js';
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
