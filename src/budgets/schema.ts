import { z } from 'zod';
import { isValidTimeZone } from '../zones.js';

/**
 * Budget input as the HTTP API and `meter.budgets` accept it. Messages name the field, so a
 * 400 says exactly what to fix.
 */
const name = z.string().trim().min(1, 'Expected `name` to be a non-empty string.').max(200);
const scopeValue = z.string().min(1).max(256);
export const scopeSchema = z
  .object({
    user: scopeValue.optional(),
    project: scopeValue.optional(),
    feature: scopeValue.optional(),
    model: scopeValue.optional(),
    provider: scopeValue.optional(),
  })
  .strict();

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

export const budgetInputSchema = z
  .object({
    name,
    scope: scopeSchema.default({}),
    period: z.enum(['day', 'week', 'month', 'total'], {
      message: 'Expected `period` to be one of day, week, month, total.',
    }),
    timezone: timezone.default('UTC'),
    limit_usd: limitUsd,
    thresholds: thresholds.default([0.5, 0.8, 1]),
    action: z
      .enum(['alert', 'block'], { message: 'Expected `action` to be alert or block.' })
      .default('alert'),
    webhook_url: z.string().max(2048).nullable().optional(),
    webhook_secret: webhookSecret.optional(),
  })
  .strict();

export const budgetPatchSchema = z
  .object({
    name: name.optional(),
    scope: scopeSchema.optional(),
    period: z.enum(['day', 'week', 'month', 'total']).optional(),
    timezone: timezone.optional(),
    limit_usd: limitUsd.optional(),
    thresholds: thresholds.optional(),
    action: z.enum(['alert', 'block']).optional(),
    webhook_url: z.string().max(2048).nullable().optional(),
    webhook_secret: webhookSecret.optional(),
  })
  .strict();

export type BudgetInput = z.input<typeof budgetInputSchema>;
export type BudgetPatch = z.input<typeof budgetPatchSchema>;
