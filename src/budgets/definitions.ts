/**
 * Budget definitions: created, changed and deleted through the API, validated where they enter
 * (schema.ts), their webhook URL judged and their secret sealed before they reach the ledger.
 * Every process reads them through one cache kept under the ledger's version.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { BudgetInputError, firstIssue } from './errors.js';
import { periodBounds } from './period.js';
import { type BudgetInput, type BudgetPatch, budgetInputSchema, budgetPatchSchema } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { webhookSecretContext } from './sender.js';
import type { Budget, BudgetLedger } from './types.js';
import { toNanos } from './units.js';
import { spendFromUsage, type UsageTotals } from './usage.js';
import { checkWebhookUrl, type Lookup } from './webhook-url.js';

interface Definitions {
  /** Every budget; budgets change rarely, and one cheap version read per use keeps every process in step. */
  all(): Budget[];
  get(id: string): Budget | null;
  /** `webhookSecret`: the secret generated for a webhook given without one, shown this once. */
  create(input: BudgetInput): Promise<{ budget: Budget; webhookSecret?: string }>;
  update(id: string, patch: BudgetPatch): Promise<Budget | null>;
  delete(id: string): boolean;
}

export function createDefinitions(options: {
  ledger: BudgetLedger;
  usage: UsageTotals | null | undefined;
  secrets: SecretBox;
  now: () => number;
  allowPrivateWebhooks: boolean;
  lookup?: Lookup | undefined;
}): Definitions {
  const { ledger, secrets, now } = options;
  let cache: { version: number; budgets: Budget[] } | null = null;

  async function checkUrl(url: string | null | undefined): Promise<void> {
    if (url === null || url === undefined) return;
    const problem = await checkWebhookUrl(url, {
      allowPrivate: options.allowPrivateWebhooks,
      lookup: options.lookup,
    });
    if (problem) throw new BudgetInputError('webhook_url', problem);
  }

  return {
    all() {
      const version = ledger.version();
      if (!cache || cache.version !== version) cache = { version, budgets: ledger.list() };
      return cache.budgets;
    },
    get: (id) => ledger.get(id),
    async create(input) {
      const parsed = budgetInputSchema.safeParse(input);
      if (!parsed.success) throw firstIssue(parsed.error);
      const v = parsed.data;
      await checkUrl(v.webhook_url);
      const generated =
        v.webhook_url && !v.webhook_secret ? `whsec_${randomBytes(24).toString('base64url')}` : null;
      const t = now();
      const id = randomUUID();
      const secret = v.webhook_secret ?? generated;
      const budget: Budget = {
        id,
        name: v.name,
        scope: v.scope,
        period: v.period,
        timezone: v.timezone,
        limitNanos: toNanos(v.limit_usd),
        thresholds: v.thresholds,
        action: v.action,
        webhookUrl: v.webhook_url ?? null,
        webhookSecret: secret === null ? null : secrets.seal(secret, webhookSecretContext(id)),
        createdMs: t,
        updatedMs: t,
      };
      // A budget created mid-period starts from what its scope already spent in the period.
      const bounds = periodBounds(budget.period, budget.timezone, t);
      const spend = await spendFromUsage(options.usage, budget.scope, bounds.start, t + 1);
      ledger.insert(budget, spend.requests > 0 ? { periodKey: bounds.key, spend } : null);
      return generated ? { budget, webhookSecret: generated } : { budget };
    },
    async update(id, patch) {
      const parsed = budgetPatchSchema.safeParse(patch);
      if (!parsed.success) throw firstIssue(parsed.error);
      const existing = ledger.get(id);
      if (!existing) return null;
      const p = parsed.data;
      await checkUrl(p.webhook_url);
      const next: Budget = {
        ...existing,
        name: p.name ?? existing.name,
        scope: p.scope ?? existing.scope,
        period: p.period ?? existing.period,
        timezone: p.timezone ?? existing.timezone,
        limitNanos: p.limit_usd !== undefined ? toNanos(p.limit_usd) : existing.limitNanos,
        thresholds: p.thresholds ?? existing.thresholds,
        action: p.action ?? existing.action,
        webhookUrl: p.webhook_url !== undefined ? p.webhook_url : existing.webhookUrl,
        webhookSecret:
          p.webhook_secret !== undefined
            ? secrets.seal(p.webhook_secret, webhookSecretContext(existing.id))
            : existing.webhookSecret,
        updatedMs: now(),
      };
      ledger.update(next);
      return next;
    },
    delete: (id) => ledger.delete(id),
  };
}
