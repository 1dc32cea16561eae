import { openaiError } from './faults.js';
import {
  DONE,
  FINGERPRINT,
  openaiHeaders,
  openaiUsage,
  SERVER_ERROR_EVENT,
  streamOptions,
} from './openai.js';
import { type Block, type Choice, makePlan, type Plan, totalOutputTokens } from './plan.js';
import { bodyReport, finalChunkReport, firstChunkReport, reportedUsage, usageReport } from './reports.js';
import type { SseEvent } from './sse.js';
import { countChatInput } from './text.js';
import type { Behavior } from './types.js';
import { type Json, optionalNumber, type Prepared, type RouteInput, toolNames, type Wire } from './wire.js';

// https://platform.openai.com/docs/api-reference/chat/object and .../chat-streaming

/** Azure's content-filter annotations (https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter). */
const SAFE = { filtered: false, severity: 'safe' };
const FILTER_RESULTS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };
const PROMPT_FILTER = [{ prompt_index: 0, content_filter_results: FILTER_RESULTS }];

function chatMessage(choice: Choice): Json {
  const tools = choice.blocks.filter((b): b is Extract<Block, { kind: 'tool' }> => b.kind === 'tool');
  if (tools.length > 0) {
    return {
      role: 'assistant',
      content: null,
      tool_calls: tools.map((t) => ({
        id: t.id,
        type: 'function',
        function: { name: t.name, arguments: t.args },
      })),
      refusal: null,
      annotations: [],
    };
  }
  const text = choice.blocks[0]?.kind === 'text' ? choice.blocks[0].text : '';
  return { role: 'assistant', content: text, refusal: null, annotations: [] };
}

function chatWire(input: RouteInput, b: Behavior): Wire {
  const { azure } = input;
  const opts = streamOptions(input.body);
  const includeUsage = opts.include_usage === true;
  // vLLM's continuous_usage_stats: cumulative usage on every chunk instead of `usage: null`.
  const continuous = b.report === 'vllm' && opts.continuous_usage_stats === true;
  const usageSoFar = (plan: Plan, completion: number): Json => ({
    prompt_tokens: plan.inputTokens,
    completion_tokens: completion,
    total_tokens: plan.inputTokens + completion,
  });
  const chunk = (plan: Plan, choices: Json[], completion: number, extra: Json = {}): SseEvent => ({
    data: JSON.stringify({
      id: plan.id,
      object: 'chat.completion.chunk',
      created: plan.created,
      model: plan.model,
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
      choices,
      ...(continuous ? { usage: usageSoFar(plan, completion) } : includeUsage ? { usage: null } : {}),
      ...extra,
    }),
  });
  const choiceDelta = (index: number, delta: Json, finish: string | null = null): Json => ({
    index,
    delta,
    logprobs: null,
    finish_reason: finish,
    ...(azure ? { content_filter_results: finish ? {} : FILTER_RESULTS } : {}),
  });
  const hasTools = (plan: Plan) => plan.choices[0]?.blocks[0]?.kind === 'tool';

  return {
    filterInBody: false,
    headers: (plan, ms) => openaiHeaders(plan, ms, azure),
    error: (fault, behavior, plan) => openaiError(fault, behavior, plan.model, azure),
    body: (plan) => ({
      id: plan.id,
      object: 'chat.completion',
      created: plan.created,
      model: plan.model,
      choices: plan.choices.map((choice, index) => ({
        index,
        message: chatMessage(choice),
        logprobs: null,
        finish_reason: plan.finish,
        ...(azure ? { content_filter_results: FILTER_RESULTS } : {}),
      })),
      usage: { ...reportedUsage(b.report, plan, openaiUsage(plan)), ...usageReport(b.report, plan) },
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
      ...(azure ? { prompt_filter_results: PROMPT_FILTER } : {}),
      ...bodyReport(b.report, plan),
    }),
    start: (plan) => {
      const events: SseEvent[] = [];
      if (azure) {
        // Azure classic opens with the prompt's filter results and no choices.
        events.push({
          data: JSON.stringify({
            choices: [],
            created: 0,
            id: '',
            model: '',
            object: '',
            prompt_filter_results: PROMPT_FILTER,
          }),
        });
      }
      const content = hasTools(plan) ? null : '';
      plan.choices.forEach((_, index) => {
        const extra = index === 0 ? firstChunkReport(b.report, plan) : {};
        events.push(
          chunk(plan, [choiceDelta(index, { role: 'assistant', content, refusal: null })], 0, extra),
        );
      });
      return events;
    },
    step: (plan, step) => {
      const events: SseEvent[] = [];
      const completion = plan.reasoningTokens + (step + 1) * plan.choices.length;
      plan.choices.forEach((choice, index) => {
        const piece = choice.pieces[step]!;
        const block = choice.blocks[piece.block]!;
        if (block.kind === 'text') {
          events.push(chunk(plan, [choiceDelta(index, { content: piece.text })], completion));
          return;
        }
        if (piece.first) {
          const open = {
            index: piece.block,
            id: block.id,
            type: 'function',
            function: { name: block.name, arguments: '' },
          };
          events.push(chunk(plan, [choiceDelta(index, { tool_calls: [open] })], completion));
        }
        const fragment = { index: piece.block, function: { arguments: piece.text } };
        events.push(chunk(plan, [choiceDelta(index, { tool_calls: [fragment] })], completion));
      });
      return events;
    },
    end: (plan) => {
      const events: SseEvent[] = [];
      const usage = reportedUsage(b.report, plan, openaiUsage(plan));
      const completion = totalOutputTokens(plan);
      if (azure) {
        // A chunk with filter results and no delta, which parsers must tolerate.
        plan.choices.forEach((choice, index) => {
          const end = choice.pieces.reduce((n, p) => n + p.text.length, 0);
          events.push(
            chunk(
              plan,
              [
                {
                  index,
                  finish_reason: null,
                  content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: end },
                  content_filter_results: FILTER_RESULTS,
                },
              ],
              completion,
            ),
          );
        });
      }
      plan.choices.forEach((_, index) => {
        const last = index === plan.choices.length - 1;
        const extra = last ? finalChunkReport(b.report, plan, usageSoFar(plan, completion)) : {};
        events.push(chunk(plan, [choiceDelta(index, {}, plan.finish)], completion, extra));
      });
      if (includeUsage) events.push(chunk(plan, [], completion, { usage }));
      events.push(DONE);
      return events;
    },
    errorEvent: () => [SERVER_ERROR_EVENT],
  };
}

export function chatRoute(input: RouteInput): Prepared {
  const { body, behavior } = input;
  const plan = makePlan({
    behavior,
    model: input.model,
    inputTokens: countChatInput(body),
    maxTokens: optionalNumber(body.max_completion_tokens) ?? optionalNumber(body.max_tokens),
    choices: optionalNumber(body.n) ?? 1,
    toolNames: toolNames(body.tools),
    cacheWrites: false,
    idPrefix: 'chatcmpl-',
  });
  return { plan, stream: body.stream === true, wire: chatWire(input, behavior) };
}
