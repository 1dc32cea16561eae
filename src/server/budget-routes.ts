/**
 * Budget and alert routes (DESIGN.md's public contract), mounted as a route module so they are
 * validated, secured and documented like the usage routes.
 */
import { z } from 'zod';
import { isBudgetInputError } from '../budgets/errors.js';
import {
  alertViewSchema,
  budgetInputSchema,
  budgetPatchSchema,
  budgetViewSchema,
} from '../budgets/schema.js';
import type { Budgets } from '../budgets/service.js';
import { HttpError, invalidRequest } from './http-error.js';
import { defineRoute, type JsonSchema, type RouteModule, type RouteResponse } from './types.js';

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (description: string, schema: string): RouteResponse => ({ description, schema: ref(schema) });
const failures = {
  400: json('Invalid input: the message and `field` name what to fix.', 'Error'),
  401: json('Missing or invalid bearer token (when the server has one).', 'Error'),
};
const notFound = { 404: json('No budget with this id.', 'Error') };

const idParams = z.object({ id: z.string().min(1).max(100) }).strict();
const alertsQuery = z
  .object({
    budget_id: z.string().min(1).max(100).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

/** An answer's schema as JSON Schema, from the zod schema the service's types come from. */
function outputSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  delete json['$schema'];
  return json;
}

const BUDGET_VIEW = outputSchema(
  budgetViewSchema.extend({
    webhook_secret: z
      .string()
      .optional()
      .meta({ description: 'Only in the 201 of a create that generated it.' }),
  }),
);
const ALERT_VIEW = outputSchema(alertViewSchema);

/** Service errors become 400s naming the field; anything else stays a 500 without details. */
async function asHttp<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isBudgetInputError(error)) throw invalidRequest(error.field, error.message);
    throw error;
  }
}

export function budgetRoutes(budgets: Budgets): RouteModule {
  const missing = (id: string) => new HttpError(404, 'not_found', `No budget with id \`${id}\`.`);
  return {
    schemas: { BudgetView: BUDGET_VIEW, AlertView: ALERT_VIEW },
    routes: [
      defineRoute({
        method: 'post',
        path: '/v1/budgets',
        summary: 'Create a budget. The generated webhook secret is returned once, here.',
        body: budgetInputSchema,
        responses: { 201: json('The budget with its current figures.', 'BudgetView'), ...failures },
        async handler({ res, body }) {
          const { budget, webhookSecret } = await asHttp(() => budgets.create(body));
          res.status(201).json(webhookSecret ? { ...budget, webhook_secret: webhookSecret } : budget);
        },
      }),
      defineRoute({
        method: 'get',
        path: '/v1/budgets',
        summary: 'Every budget with spend, remaining, period bounds and forecast.',
        responses: {
          200: {
            description: 'The budgets.',
            schema: { type: 'object', properties: { budgets: { type: 'array', items: ref('BudgetView') } } },
          },
          401: failures[401],
        },
        async handler({ res }) {
          res.json({ budgets: await budgets.list() });
        },
      }),
      defineRoute({
        method: 'get',
        path: '/v1/budgets/{id}',
        summary: 'One budget with spend, remaining, period bounds and forecast.',
        params: idParams,
        responses: { 200: json('The budget.', 'BudgetView'), ...failures, ...notFound },
        async handler({ res, params }) {
          const view = await budgets.get(params.id);
          if (!view) throw missing(params.id);
          res.json(view);
        },
      }),
      defineRoute({
        method: 'patch',
        path: '/v1/budgets/{id}',
        summary: 'Change a budget; omitted fields keep their value.',
        params: idParams,
        body: budgetPatchSchema,
        responses: { 200: json('The budget.', 'BudgetView'), ...failures, ...notFound },
        async handler({ res, params, body }) {
          const view = await asHttp(() => budgets.update(params.id, body));
          if (!view) throw missing(params.id);
          res.json(view);
        },
      }),
      defineRoute({
        method: 'delete',
        path: '/v1/budgets/{id}',
        summary: 'Delete a budget; its pending alerts are cancelled.',
        params: idParams,
        responses: { 204: { description: 'Deleted.' }, ...failures, ...notFound },
        handler({ res, params }) {
          if (!budgets.delete(params.id)) throw missing(params.id);
          res.status(204).end();
        },
      }),
      defineRoute({
        method: 'post',
        path: '/v1/budgets/{id}/test-alert',
        summary: 'Send a signed `budget.test` event to the budget webhook now.',
        params: idParams,
        responses: {
          200: {
            description: 'What the receiver answered.',
            schema: {
              type: 'object',
              properties: {
                delivered: { type: 'boolean' },
                status: { type: ['integer', 'null'] },
                error: { type: ['string', 'null'] },
              },
            },
          },
          ...failures,
          ...notFound,
        },
        async handler({ res, params }) {
          const result = await budgets.testAlert(params.id);
          if (!result) throw missing(params.id);
          res.json(result);
        },
      }),
      defineRoute({
        method: 'get',
        path: '/v1/alerts',
        summary: 'Fired threshold alerts, newest first, with their delivery state.',
        query: alertsQuery,
        responses: {
          200: {
            description: 'The alerts.',
            schema: { type: 'object', properties: { alerts: { type: 'array', items: ref('AlertView') } } },
          },
          ...failures,
        },
        handler({ res, query }) {
          res.json({ alerts: budgets.alerts(query.budget_id, query.limit) });
        },
      }),
    ],
  };
}
