import { anthropicError } from './faults.js';
import { type Block, type Finish, makePlan, newId, type Plan, totalOutputTokens } from './plan.js';
import type { SseEvent } from './sse.js';
import { countAnthropicInput } from './text.js';
import {
  bodyOnlyWire,
  type Json,
  optionalNumber,
  type Prepared,
  type RouteInput,
  toolNames,
  type Wire,
} from './wire.js';

// https://docs.anthropic.com/en/api/messages and https://docs.anthropic.com/en/docs/build-with-claude/streaming

const STOP_REASONS: Record<Finish, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  content_filter: 'refusal',
};

/** Anthropic's `input_tokens` excludes cache reads and writes; the three add up to the counted input. */
function usage(plan: Plan, outputTokens: number): Json {
  return {
    input_tokens: plan.inputTokens - plan.cacheReadTokens - plan.cacheWriteTokens,
    cache_creation_input_tokens: plan.cacheWriteTokens,
    cache_read_input_tokens: plan.cacheReadTokens,
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

function headers(plan: Plan): Record<string, string> {
  const reset = new Date(Date.now() + 60_000).toISOString();
  const limits: Record<string, string> = { 'request-id': newId('req_011', 12) };
  const kinds: [string, number, number][] = [
    ['requests', 4000, 3999],
    ['tokens', 400_000, 400_000 - plan.inputTokens],
    ['input-tokens', 200_000, 200_000 - plan.inputTokens],
    ['output-tokens', 80_000, 80_000],
  ];
  for (const [kind, limit, remaining] of kinds) {
    limits[`anthropic-ratelimit-${kind}-limit`] = String(limit);
    limits[`anthropic-ratelimit-${kind}-remaining`] = String(Math.max(remaining, 0));
    limits[`anthropic-ratelimit-${kind}-reset`] = reset;
  }
  return limits;
}

const toolUseId = (block: Extract<Block, { kind: 'tool' }>) => block.id.replace(/^call_/, 'toolu_01');

function contentBlock(block: Block, done: boolean): Json {
  if (block.kind === 'text') return { type: 'text', text: done ? block.text : '' };
  return { type: 'tool_use', id: toolUseId(block), name: block.name, input: done ? block.input : {} };
}

const event = (type: string, fields: Json = {}): SseEvent => ({
  event: type,
  data: JSON.stringify({ type, ...fields }),
});

function messagesWire(): Wire {
  const message = (plan: Plan, final: boolean): Json => ({
    id: plan.id,
    type: 'message',
    role: 'assistant',
    model: plan.model,
    content: final ? (plan.choices[0]?.blocks ?? []).map((b) => contentBlock(b, true)) : [],
    stop_reason: final ? STOP_REASONS[plan.finish] : null,
    stop_sequence: null,
    usage: usage(plan, final ? totalOutputTokens(plan) : 1),
  });
  return {
    filterInBody: true,
    headers: (plan) => headers(plan),
    error: (fault, behavior, plan) => anthropicError(fault, behavior, plan.model),
    body: (plan) => message(plan, true),
    start: (plan) => [
      event('message_start', { message: message(plan, false) }),
      ...((plan.choices[0]?.pieces.length ?? 0) === 0 ? [event('ping')] : []),
    ],
    step: (plan, step) => {
      const choice = plan.choices[0]!;
      const piece = choice.pieces[step]!;
      const block = choice.blocks[piece.block]!;
      const index = piece.block;
      const events: SseEvent[] = [];
      if (piece.first) {
        events.push(event('content_block_start', { index, content_block: contentBlock(block, false) }));
        if (index === 0) events.push(event('ping'));
      }
      const delta =
        block.kind === 'text'
          ? { type: 'text_delta', text: piece.text }
          : { type: 'input_json_delta', partial_json: piece.text };
      events.push(event('content_block_delta', { index, delta }));
      if (piece.last) events.push(event('content_block_stop', { index }));
      return events;
    },
    end: (plan) => {
      const last = plan.choices[0]?.pieces.at(-1);
      return [
        ...(last && !last.last ? [event('content_block_stop', { index: last.block })] : []),
        event('message_delta', {
          delta: { stop_reason: STOP_REASONS[plan.finish], stop_sequence: null },
          usage: { output_tokens: totalOutputTokens(plan) },
        }),
        event('message_stop'),
      ];
    },
    errorEvent: () => [event('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })],
  };
}

export function messagesRoute(input: RouteInput): Prepared {
  const { body } = input;
  const plan = makePlan({
    behavior: input.behavior,
    model: input.model,
    inputTokens: countAnthropicInput(body),
    maxTokens: optionalNumber(body.max_tokens),
    choices: 1,
    toolNames: toolNames(body.tools),
    cacheWrites: true,
    idPrefix: 'msg_01',
  });
  return { plan, stream: body.stream === true, wire: messagesWire() };
}

// https://docs.anthropic.com/en/api/messages-count-tokens
export function countTokensRoute(input: RouteInput): Prepared {
  const plan = makePlan({
    behavior: { ...input.behavior, outputTokens: 0, reasoningTokens: 0, toolCalls: 0, cacheReadTokens: 0 },
    model: input.model,
    inputTokens: countAnthropicInput(input.body),
    maxTokens: undefined,
    choices: 1,
    toolNames: [],
    cacheWrites: false,
    idPrefix: 'msg_01',
  });
  const wire = bodyOnlyWire(
    (p) => ({ input_tokens: p.inputTokens }),
    (p) => headers(p),
    (fault, behavior, p) => anthropicError(fault, behavior, p.model),
    true,
  );
  return { plan, stream: false, wire };
}
