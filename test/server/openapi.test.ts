/**
 * /openapi.json against what Express actually serves: every registered route is documented,
 * every documented route is registered, and every reference resolves.
 */
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createServer, defineRoute, type RouteModule } from '../../src/server/index.js';
import { openSqliteStore, type UsageStore } from '../../src/store/index.js';

const budgets: RouteModule = {
  routes: [
    defineRoute({
      method: 'get',
      path: '/v1/budgets/{id}',
      summary: 'A budget (stand-in for the budgets module).',
      params: z.strictObject({ id: z.string() }),
      responses: { 200: { description: 'The budget.', schema: { $ref: '#/components/schemas/Budget' } } },
      handler({ res, params }) {
        res.json({ id: params.id });
      },
    }),
  ],
  schemas: { Budget: { type: 'object', properties: { id: { type: 'string' } } } },
};

type Doc = {
  openapi: string;
  paths: Record<
    string,
    Record<string, { security?: unknown; parameters: Array<{ name: string; in: string }> }>
  >;
  components: { schemas: Record<string, unknown>; securitySchemes?: unknown };
};

let store: UsageStore;
let app: Express;
let doc: Doc;

beforeAll(async () => {
  store = openSqliteStore({ path: ':memory:' });
  app = createServer({ store }, { apiToken: 'token', modules: [budgets] });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/openapi.json`);
  doc = (await res.json()) as Doc;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterAll(() => store.close());

/** Routes as Express registered them: "get /v1/budgets/{id}". */
function registered(express: Express): string[] {
  const stack = (
    express as unknown as { router: { stack: Array<{ route?: { path: string; methods: object } }> } }
  ).router.stack;
  return stack.flatMap((layer) =>
    layer.route
      ? Object.keys(layer.route.methods).map(
          (method) => `${method} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`,
        )
      : [],
  );
}

function documented(openapi: Doc): string[] {
  return Object.entries(openapi.paths).flatMap(([path, operations]) =>
    Object.keys(operations).map((method) => `${method} ${path}`),
  );
}

describe('/openapi.json', () => {
  it('is OpenAPI 3.1', () => {
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents every route Express serves, and nothing else', () => {
    const routes = registered(app);
    expect(routes).toContain('get /v1/usage/summary');
    expect(routes).toContain('get /v1/budgets/{id}');
    expect(documented(doc).sort()).toEqual(routes.sort());
  });

  it('marks exactly the /v1 routes as needing the bearer token', () => {
    expect(doc.components.securitySchemes).toEqual({ bearer: { type: 'http', scheme: 'bearer' } });
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const operation of Object.values(operations)) {
        expect(operation.security !== undefined, path).toBe(path.startsWith('/v1/'));
      }
    }
  });

  it.each([
    ['/v1/usage/summary', ['from', 'to', 'tz', 'group_by', 'limit', 'model', 'user', 'outcome']],
    ['/v1/usage/events', ['limit', 'cursor', 'format', 'from', 'provider']],
    ['/v1/usage/timeseries', ['interval', 'metric', 'group_by', 'limit', 'feature']],
  ])('lists the query parameters of %s', (path, names) => {
    const parameters = doc.paths[path]!['get']!.parameters;
    for (const name of names) expect(parameters.map((p) => p.name)).toContain(name);
    expect(parameters.every((p) => p.in === 'query')).toBe(true);
  });

  it('documents path parameters of added modules', () => {
    expect(doc.paths['/v1/budgets/{id}']!['get']!.parameters).toEqual([
      expect.objectContaining({ name: 'id', in: 'path', required: true }),
    ]);
  });

  it('resolves every $ref', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map(
      (m) => m[1]!,
    );
    expect(refs.length).toBeGreaterThan(5);
    for (const name of refs) expect(doc.components.schemas, name).toHaveProperty(name);
  });
});
