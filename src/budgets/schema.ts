/**
 * Budgets as the HTTP API and `meter.budgets` speak them: what is accepted (input, patch) and
 * what is answered (views), as zod schemas built from the one shape in
 * src/common/budget-shape.ts. The TypeScript types are inferred from these schemas and the
 * OpenAPI document is generated from them (src/server/budget-routes.ts), so none can drift.
 * Input messages name the field, so a 400 says exactly what to fix.
 */
import { z } from 'zod';
import { ALERT_STATES, BUDGET_ACTIONS, PERIODS, SCOPE_KEYS, type ScopeKey } from '../common/budget-shape.js';
import { isValidTimeZone } from '../zones.js';

const name = z.string().trim().min(1, 'Expected `name` to be a non-empty string.').max(200);

function scopeOf<T extends z.ZodType>(value: T) {
  return z
    .object(
      Object.fromEntries(SCOPE_KEYS.map((key) => [key, value.optional()])) as {
        [K in ScopeKey]: z.ZodOptional<T>;
      },
    )
    .strict();
}

const scopeSchema = scopeOf(z.string().min(1).max(256));

const timezone = z.string().max(64).refine(isValidTimeZone, {
  message: 'Expected `timezone` to be an IANA time zone such as "Europe/Paris".',
});

const thresholds = z
  .array(
    z
      .number()
      .gt(0, 'Expected each of `thresholds` to be > 0.')
      .lte(10, 'Expected each of `thresholds` to be <= 10.'),
  )
  .min(1)
  .max(20)
  .transform((ts) => [...new Set(ts)].sort((a, b) => a - b));

/** `enc:` starts a stored, encrypted secret (secret-box.ts): a clear one must not look like one. */
const webhookSecret = z
  .string()
  .min(16, 'Expected `webhook_secret` to have at least 16 characters.')
  .max(256, 'Expected `webhook_secret` to have at most 256 characters.')
  .refine((s) => !s.startsWith('enc:'), { message: 'Expected `webhook_secret` not to start with "enc:".' });

const limitUsd = z
  .number({ message: 'Expected `limit_usd` to be a positive number.' })
  .positive('Expected `limit_usd` to be a positive number.')
  .max(1e9, 'Expected `limit_usd` to be at most 1e9.');

const period = z.enum(PERIODS, { message: `Expected \`period\` to be one of ${PERIODS.join(', ')}.` });
const action = z.enum(BUDGET_ACTIONS, {
  message: `Expected \`action\` to be ${BUDGET_ACTIONS.join(' or ')}.`,
});
const webhookUrl = z.string().max(2048).nullable();

export const budgetInputSchema = z
  .object({
    name,
    scope: scopeSchema.default({}),
    period,
    timezone: timezone.default('UTC'),
    limit_usd: limitUsd,
    thresholds: thresholds.default([0.5, 0.8, 1]),
    action: action.default('alert'),
    webhook_url: webhookUrl.optional(),
    webhook_secret: webhookSecret.optional(),
  })
  .strict();

export const budgetPatchSchema = z
  .object({
    name: name.optional(),
    scope: scopeSchema.optional(),
    period: z.enum(PERIODS).optional(),
    timezone: timezone.optional(),
    limit_usd: limitUsd.optional(),
    thresholds: thresholds.optional(),
    action: z.enum(BUDGET_ACTIONS).optional(),
    webhook_url: webhookUrl.optional(),
    webhook_secret: webhookSecret.optional(),
  })
  .strict();

export type BudgetInput = z.input<typeof budgetInputSchema>;
export type BudgetPatch = z.input<typeof budgetPatchSchema>;

/** An instant as the API writes it: ISO 8601, UTC. */
const instant = z.string().meta({ format: 'date-time' });

/** A budget as the API shows it: figures for the current period, never the secret. */
export const budgetViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  scope: scopeOf(z.string()),
  period,
  timezone: z.string(),
  limit_usd: z.number(),
  thresholds: z.array(z.number()),
  action,
  webhook_url: z.string().nullable(),
  has_webhook_secret: z.boolean(),
  spent_usd: z.number(),
  reserved_usd: z.number(),
  remaining_usd: z.number(),
  requests: z.number().int(),
  unpriced_requests: z.number().int(),
  period_start: instant,
  period_end: instant.nullable(),
  /** Null for a `total` budget: it has no period end to forecast to. */
  forecast_usd: z.number().nullable(),
  created_at: instant,
  updated_at: instant,
});
export type BudgetView = z.infer<typeof budgetViewSchema>;

/** A fired threshold alert with its delivery state. */
export const alertViewSchema = z.object({
  id: z.string(),
  budget_id: z.string(),
  /** The period's key (e.g. `day:2026-11-29`). */
  period: z.string(),
  threshold: z.number(),
  state: z.enum(ALERT_STATES),
  attempts: z.number().int(),
  last_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  next_attempt_at: instant.nullable(),
  delivered_at: instant.nullable(),
  created_at: instant,
  /** The webhook body as delivered. */
  payload: z.record(z.string(), z.unknown()),
});
export type AlertView = z.infer<typeof alertViewSchema>;
