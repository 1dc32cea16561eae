import { openaiError } from './faults.js';
import { DONE, FINGERPRINT, openaiHeaders, SERVER_ERROR_EVENT, streamOptions } from './openai.js';
import { type Choice, makePlan, type Plan, totalOutputTokens } from './plan.js';
import type { SseEvent } from './sse.js';
import { countPlainInputs } from './text.js';
import { type Json, optionalNumber, type Prepared, type RouteInput, type Wire } from './wire.js';

// https://platform.openai.com/docs/api-reference/completions (legacy)
function completionsWire(input: RouteInput): Wire {
  const includeUsage = streamOptions(input.body).include_usage === true;
  const chunk = (plan: Plan, choices: Json[], extra: Json = {}): SseEvent => ({
    data: JSON.stringify({
      id: plan.id,
      object: 'text_completion',
      created: plan.created,
      choices,
      model: plan.model,
      system_fingerprint: FINGERPRINT,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    }),
  });
  const usage = (plan: Plan): Json => {
    const completion = totalOutputTokens(plan);
    return {
      prompt_tokens: plan.inputTokens,
      completion_tokens: completion,
      total_tokens: plan.inputTokens + completion,
    };
  };
  const text = (choice: Choice): string => choice.pieces.map((p) => p.text).join('');
  return {
    filterInBody: false,
    headers: (plan, ms) => openaiHeaders(plan, ms, input.azure),
    error: (fault, behavior, plan) => openaiError(fault, behavior, plan.model, input.azure),
    body: (plan) => ({
      id: plan.id,
      object: 'text_completion',
      created: plan.created,
      model: plan.model,
      system_fingerprint: FINGERPRINT,
      choices: plan.choices.map((choice, index) => ({
        text: text(choice),
        index,
        logprobs: null,
        finish_reason: plan.finish,
      })),
      usage: usage(plan),
    }),
    start: () => [],
    step: (plan, step) =>
      plan.choices.map((choice, index) =>
        chunk(plan, [{ text: choice.pieces[step]!.text, index, logprobs: null, finish_reason: null }]),
      ),
    end: (plan) => [
      ...plan.choices.map((_, index) =>
        chunk(plan, [{ text: '', index, logprobs: null, finish_reason: plan.finish }]),
      ),
      ...(includeUsage ? [chunk(plan, [], { usage: usage(plan) })] : []),
      DONE,
    ],
    errorEvent: () => [SERVER_ERROR_EVENT],
  };
}

export function completionsRoute(input: RouteInput): Prepared {
  const { body } = input;
  const behavior = { ...input.behavior, toolCalls: 0 };
  const plan = makePlan({
    behavior,
    model: input.model,
    inputTokens: countPlainInputs(body.prompt),
    maxTokens: optionalNumber(body.max_tokens),
    choices: optionalNumber(body.n) ?? 1,
    toolNames: [],
    cacheWrites: false,
    idPrefix: 'cmpl-',
  });
  return { plan, stream: body.stream === true, wire: completionsWire(input) };
}
