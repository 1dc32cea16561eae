import { currentAttribution } from '../attribution.js';
import { refusalResponse } from '../fetch/refuse.js';
import { internalsOf } from '../meter-internals.js';
import { nonNegativeInt, positiveInt } from '../options.js';
import { guardMarker } from '../providers/refusal.js';
import { estimateChatInput } from '../tokens/index.js';
import { callFacts, type FetchLike } from './call.js';
import { createSlidingWindow } from './sliding-window.js';
import type { GuardOptions, Guards } from './types.js';

/**
 * Guards against cost explosions (unbounded outputs, agent loops that never stop calling tools,
 * one user's runaway or injected prompts): a default max output tokens for calls that set none,
 * a cap on an agent loop's tool-call rounds, and per-user request and token limits.
 * Refusals are answered in the provider's own error shape: 400 `tool_rounds_exceeded`
 * (a retry cannot help), 429 `user_rate_limit_exceeded` with the wait in `retry-after-ms`.
 */
export function createGuards(options: GuardOptions = {}): Guards {
  const defaultMaxTokens = positiveInt('defaultMaxTokens', options.defaultMaxTokens, undefined);
  const maxToolRounds = nonNegativeInt('maxToolRounds', options.maxToolRounds, undefined);
  const requestLimit = positiveInt('perUser.requests', options.perUser?.requests, undefined);
  const tokenLimit = positiveInt('perUser.tokens', options.perUser?.tokens, undefined);
  const windowMs = positiveInt('perUser.windowMs', options.perUser?.windowMs, 60_000);
  const now = options.now ?? (() => performance.now());
  const requests = createSlidingWindow(windowMs);
  const tokens = createSlidingWindow(windowMs);

  return {
    amend(input, init) {
      if (defaultMaxTokens === undefined) return null;
      const facts = callFacts(input, init);
      // Only a request that names no limit of its own; the field is the wire format's.
      if (!facts?.body || facts.info.maxTokens !== null) return null;
      return facts.adapter.withMaxOutputTokens?.(facts.body, facts.detection, defaultMaxTokens) ?? null;
    },
    async check(input, init, user) {
      const facts = callFacts(input, init);
      if (!facts) return null;
      if (maxToolRounds !== undefined) {
        const rounds = facts.info.toolRounds;
        if (rounds > maxToolRounds) {
          return refusalResponse(facts.adapter, {
            kind: 'guard',
            marker: guardMarker('max_tool_rounds'),
            status: 400,
            type: 'tool_rounds_exceeded',
            message: `This conversation holds ${rounds} tool-call rounds, over the cap of ${maxToolRounds}; the call was not sent.`,
          });
        }
      }
      if (user === undefined || (requestLimit === undefined && tokenLimit === undefined)) return null;
      const at = now();
      if (requestLimit !== undefined && requests.used(user, at) + 1 > requestLimit) {
        return refusalResponse(facts.adapter, {
          kind: 'guard',
          marker: guardMarker('user_requests'),
          status: 429,
          type: 'user_rate_limit_exceeded',
          message: `User "${user}" made ${requestLimit} requests in the last ${windowMs} ms, the most allowed.`,
          retryAfterMs: requests.waitFor(user, 1, requestLimit, at),
          shouldRetry: true,
        });
      }
      let estimate = 0;
      if (tokenLimit !== undefined && facts.body) {
        estimate = (await estimateChatInput(facts.body, facts.model, facts.shape)).tokens;
        if (tokens.used(user, at) + estimate > tokenLimit) {
          return refusalResponse(facts.adapter, {
            kind: 'guard',
            marker: guardMarker('user_tokens'),
            status: 429,
            type: 'user_rate_limit_exceeded',
            message: `User "${user}" would exceed ${tokenLimit} tokens in ${windowMs} ms with this call.`,
            retryAfterMs: tokens.waitFor(user, estimate, tokenLimit, at),
            // A call larger than the whole limit can never fit.
            shouldRetry: estimate <= tokenLimit,
          });
        }
      }
      requests.add(user, 1, at);
      tokens.add(user, estimate, at);
      return null;
    },
    observe(record) {
      const user = record.attribution.user;
      if (tokenLimit === undefined || user === undefined || !record.usage) return;
      tokens.add(user, record.usage.outputTokens, now());
    },
  };
}

const observed = new WeakMap<object, WeakSet<Guards>>();

/**
 * A metered fetch with guards: the default max tokens is applied before metering (the record
 * shows the capped request), refusals are answered beneath the meter, so each one is recorded
 * like a provider's error (its status, `errorCode` = the refusal type) without reaching the
 * provider. Per-user limits read the user from `meter.run`.
 */
export function withGuards(
  meter: { wrapFetch(fetch: FetchLike): FetchLike },
  guards: Guards,
  base: FetchLike = (input, init) => globalThis.fetch(input, init),
): FetchLike {
  let seen = observed.get(meter);
  if (!seen) {
    seen = new WeakSet();
    observed.set(meter, seen);
  }
  const internals = internalsOf(meter);
  if (internals && !seen.has(guards)) {
    seen.add(guards);
    internals.addSink('guards', (record) => guards.observe(record));
  }
  const metered = meter.wrapFetch(guardedBase(guards, base));
  return function guardedFetch(input, init) {
    const body = guards.amend(input, init);
    if (!body) return metered(input, init);
    const headers = new Headers(init?.headers);
    headers.delete('content-length');
    return metered(input, { ...init, headers, body: JSON.stringify(body) });
  };
}

/** The refusing half of the guards, for a fetch the meter wraps. */
export function guardedBase(guards: Guards, base: FetchLike): FetchLike {
  return async function guardedBaseFetch(input, init) {
    const refusal = await guards.check(input, init, currentAttribution()?.user);
    return refusal ?? base(input, init);
  };
}
