/**
 * What the reporting server needs from the meter, and how other parts add routes to it.
 */
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { Budgets } from '../budgets/service.js';
import type { UsageStore } from '../store/types.js';

/** The part of a meter the server reads. `createMeter()`'s result satisfies it. */
export interface ServerMeter {
  /** A meter created with `database: false` has none; the server needs one. */
  readonly store: UsageStore | null;
  /** When present, the budget and alert routes are mounted. */
  readonly budgets?: Budgets | null;
}

export interface ServerOptions {
  /**
   * When set, every /v1 route needs `Authorization: Bearer <apiToken>`. Without one the server is
   * for this machine only: `listen()` binds 127.0.0.1 and refuses a host other machines can
   * reach, peers beyond loopback are refused, and only loopback `Host` names are answered.
   */
  apiToken?: string | undefined;
  /**
   * Serve without a token beyond loopback anyway: `listen()` accepts any host (with a warning on
   * `logger`), any peer is answered, and `Host` may be any IP address. Everyone who can reach
   * the server can then read usage and change budgets and prices.
   */
  insecureNoAuth?: boolean | undefined;
  /** Where the server's warnings go. Default: `process.emitWarning`. */
  logger?: ((message: string) => void) | undefined;
  /**
   * More routes, mounted and documented like the built-in ones (budgets, alerts): each is
   * validated with its zod schemas, sits behind the token under /v1, and appears in /openapi.json.
   */
  modules?: readonly RouteModule[] | undefined;
  /** Largest JSON request body. Default 100 kB. */
  jsonLimit?: string | undefined;
}

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteContext<Query, Params, Body> {
  req: Request;
  res: Response;
  query: Query;
  params: Params;
  body: Body;
}

/** A JSON Schema (OpenAPI 3.1 uses JSON Schema 2020-12) for a documented response. */
export type JsonSchema = Record<string, unknown>;

export interface RouteResponse {
  description: string;
  /** The application/json body. */
  schema?: JsonSchema;
  /** Other media types (e.g. `text/csv`) and their schemas. */
  content?: Record<string, JsonSchema>;
}

/**
 * One route: the app registers it, validates its input and documents it, all from this.
 * `path` is written the OpenAPI way (`/v1/budgets/{id}`).
 */
export interface RouteDef<
  Query extends z.ZodType = z.ZodType,
  Params extends z.ZodType = z.ZodType,
  Body extends z.ZodType = z.ZodType,
> {
  method: HttpMethod;
  path: string;
  summary: string;
  /** Default: true for paths under /v1. */
  auth?: boolean;
  query?: Query;
  params?: Params;
  body?: Body;
  responses: Record<number, RouteResponse>;
  handler(context: RouteContext<z.output<Query>, z.output<Params>, z.output<Body>>): Promise<void> | void;
}

export interface RouteModule {
  routes: readonly RouteDef[];
  /** Named schemas referenced as `#/components/schemas/<name>` in the module's responses. */
  schemas?: Record<string, JsonSchema>;
}

/** Helps TypeScript infer a route's schema types in a route table. */
export function defineRoute<Q extends z.ZodType, P extends z.ZodType, B extends z.ZodType>(
  route: RouteDef<Q, P, B>,
): RouteDef {
  return route as unknown as RouteDef;
}
