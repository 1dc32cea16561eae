/**
 * The OpenAPI 3.1 document, built from the same route table the app registers, so the two
 * cannot drift apart (test/server/openapi.test.ts checks it against Express's own router).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { JsonSchema, RouteDef, RouteModule } from './types.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The input side of a zod object schema as JSON Schema: what a client sends. */
function inputSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete json['$schema'];
  return json;
}

function parameters(schema: z.ZodType | undefined, location: 'query' | 'path'): JsonSchema[] {
  if (!schema) return [];
  const object = inputSchema(schema);
  const properties = (object['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = new Set((object['required'] ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

function operation(route: RouteDef, secured: boolean): JsonSchema {
  return {
    summary: route.summary,
    ...(secured ? { security: [{ bearer: [] }] } : {}),
    parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: inputSchema(route.body) } },
          },
        }
      : {}),
    responses: Object.fromEntries(
      Object.entries(route.responses).map(([status, response]) => [
        status,
        {
          description: response.description,
          ...(response.schema || response.content
            ? {
                content: {
                  ...(response.schema ? { 'application/json': { schema: response.schema } } : {}),
                  ...Object.fromEntries(
                    Object.entries(response.content ?? {}).map(([type, schema]) => [type, { schema }]),
                  ),
                },
              }
            : {}),
        },
      ]),
    ),
  };
}

export function buildOpenApi(
  modules: readonly RouteModule[],
  options: { secured: boolean; isSecured: (route: RouteDef) => boolean },
): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of modules.flatMap((module) => module.routes)) {
    paths[route.path] ??= {};
    paths[route.path]![route.method] = operation(route, options.secured && options.isSecured(route));
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'llm-meter',
      version: packageVersion(),
      description: 'Usage, cost and latency of LLM API calls, as recorded by llm-meter.',
    },
    paths,
    components: {
      schemas: Object.assign({}, ...modules.map((module) => module.schemas ?? {})),
      ...(options.secured ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
  };
}
