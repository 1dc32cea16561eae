/**
 * Sends one webhook event for a budget: signed with the budget's secret (signature.ts), over the
 * pinned transport (webhook-transport.ts), and read back as the outbox needs it.
 */
import { parseRetryAfter } from '../errors/retry-after.js';
import type { SecretBox } from './secret-box.js';
import { SIGNATURE_HEADER, sign } from './signature.js';
import type { Budget } from './types.js';
import type { WebhookTransport } from './webhook-transport.js';

interface SendOutcome {
  /** The receiver's status; null when none answered. */
  status: number | null;
  /** A fixed word when no receiver answered (`timeout`, `network`, `secret_unavailable`...). */
  error: string | null;
  /** How long the receiver asked to wait (Retry-After), in ms. */
  retryAfterMs: number | null;
  /** Retrying cannot help (the address is refused). */
  permanent: boolean;
}

export interface WebhookSender {
  send(budget: Budget, eventId: string, body: string): Promise<SendOutcome>;
}

/** The additional data a budget's sealed secret is bound to (secret-box.ts). */
export const webhookSecretContext = (budgetId: string): string =>
  `llm-meter/budget/${budgetId}/webhook_secret`;

export function createWebhookSender(options: {
  transport: WebhookTransport;
  secrets: SecretBox;
  now: () => number;
  logger?: ((message: string, error?: unknown) => void) | undefined;
}): WebhookSender {
  const { transport, secrets, now } = options;
  return {
    async send(budget, eventId, body) {
      const url = budget.webhookUrl!;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'llm-meter-webhooks/0.1',
        'idempotency-key': eventId,
      };
      if (budget.webhookSecret !== null) {
        const secret = secrets.open(budget.webhookSecret, webhookSecretContext(budget.id));
        // Sealed under another key, or none configured here: an unsigned delivery would only be
        // refused, so none is made; the alert waits for a process that can sign it.
        if (secret === null) {
          options.logger?.(
            `llm-meter: the webhook secret of budget ${budget.id} cannot be decrypted (is LLM_METER_SECRET_KEY set to the key it was stored with?)`,
          );
          return { status: null, error: 'secret_unavailable', retryAfterMs: null, permanent: false };
        }
        headers[SIGNATURE_HEADER.toLowerCase()] = sign(secret, body, Math.floor(now() / 1000));
      }
      const result = await transport.send(url, headers, body);
      if (result.status === null)
        return { status: null, error: result.error, retryAfterMs: null, permanent: result.permanent };
      // Seconds or an HTTP date, as RFC 9110 allows (and retry-after-ms where a receiver sends it).
      const retryAfterMs = parseRetryAfter(result.retryAfter.ms, result.retryAfter.header, now());
      return { status: result.status, error: null, retryAfterMs, permanent: false };
    },
  };
}
