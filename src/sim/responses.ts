import { openaiError } from './faults.js';
import { openaiHeaders } from './openai.js';
import { type Block, makePlan, newId, type Plan, totalOutputTokens } from './plan.js';
import type { SseEvent } from './sse.js';
import { countResponsesInput } from './text.js';
import { type Json, optionalNumber, type Prepared, type RouteInput, toolNames, type Wire } from './wire.js';

// https://platform.openai.com/docs/api-reference/responses/object and .../responses-streaming

function usage(plan: Plan): Json {
  const output = totalOutputTokens(plan);
  return {
    input_tokens: plan.inputTokens,
    input_tokens_details: { cached_tokens: plan.cacheReadTokens },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: plan.reasoningTokens },
    total_tokens: plan.inputTokens + output,
  };
}

function responsesWire(input: RouteInput, plan: Plan): Wire {
  const { body } = input;
  const itemIds = (plan.choices[0]?.blocks ?? []).map((b) => newId(b.kind === 'text' ? 'msg_' : 'fc_'));
  let sequence = 0;
  const event = (type: string, fields: Json): SseEvent => ({
    event: type,
    data: JSON.stringify({ type, sequence_number: sequence++, ...fields }),
  });

  const outputText = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });
  const item = (block: Block, index: number, done: boolean): Json =>
    block.kind === 'text'
      ? {
          type: 'message',
          id: itemIds[index],
          status: done ? 'completed' : 'in_progress',
          role: 'assistant',
          content: done ? [outputText(block.text)] : [],
        }
      : {
          type: 'function_call',
          id: itemIds[index],
          call_id: block.id,
          name: block.name,
          arguments: done ? block.args : '',
          status: done ? 'completed' : 'in_progress',
        };

  const incomplete = (p: Plan) =>
    p.finish === 'length' ? 'max_output_tokens' : p.finish === 'content_filter' ? 'content_filter' : null;

  const response = (p: Plan, final: boolean): Json => {
    const reason = incomplete(p);
    return {
      id: p.id,
      object: 'response',
      created_at: p.created,
      status: final ? (reason ? 'incomplete' : 'completed') : 'in_progress',
      background: false,
      error: null,
      incomplete_details: final && reason ? { reason } : null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model: p.model,
      output: final ? (p.choices[0]?.blocks ?? []).map((b, i) => item(b, i, true)) : [],
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      service_tier: 'default',
      store: true,
      temperature: 1,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: body.tools ?? [],
      top_p: 1,
      truncation: 'disabled',
      usage: final ? usage(p) : null,
      user: null,
      metadata: {},
    };
  };

  return {
    filterInBody: false,
    headers: (p, ms) => openaiHeaders(p, ms, input.azure),
    error: (fault, behavior, p) => openaiError(fault, behavior, p.model, input.azure),
    body: (p) => response(p, true),
    start: (p) => [
      event('response.created', { response: response(p, false) }),
      event('response.in_progress', { response: response(p, false) }),
    ],
    step: (p, step) => {
      const choice = p.choices[0]!;
      const piece = choice.pieces[step]!;
      const block = choice.blocks[piece.block]!;
      const at = { item_id: itemIds[piece.block], output_index: piece.block };
      const events: SseEvent[] = [];
      if (piece.first) {
        events.push(
          event('response.output_item.added', {
            output_index: piece.block,
            item: item(block, piece.block, false),
          }),
        );
        if (block.kind === 'text') {
          events.push(
            event('response.content_part.added', { ...at, content_index: 0, part: outputText('') }),
          );
        }
      }
      if (block.kind === 'text') {
        events.push(
          event('response.output_text.delta', { ...at, content_index: 0, delta: piece.text, logprobs: [] }),
        );
        if (piece.last) {
          events.push(
            event('response.output_text.done', { ...at, content_index: 0, text: block.text, logprobs: [] }),
            event('response.content_part.done', { ...at, content_index: 0, part: outputText(block.text) }),
          );
        }
      } else {
        events.push(event('response.function_call_arguments.delta', { ...at, delta: piece.text }));
        if (piece.last)
          events.push(event('response.function_call_arguments.done', { ...at, arguments: block.args }));
      }
      if (piece.last) {
        events.push(
          event('response.output_item.done', {
            output_index: piece.block,
            item: item(block, piece.block, true),
          }),
        );
      }
      return events;
    },
    end: (p) => [
      event(incomplete(p) ? 'response.incomplete' : 'response.completed', { response: response(p, true) }),
    ],
    errorEvent: () => [
      event('error', {
        code: 'server_error',
        message: 'The server had an error while processing your request. Sorry about that!',
        param: null,
      }),
    ],
  };
}

export function responsesRoute(input: RouteInput): Prepared {
  const { body } = input;
  const plan = makePlan({
    behavior: input.behavior,
    model: input.model,
    inputTokens: countResponsesInput(body),
    maxTokens: optionalNumber(body.max_output_tokens),
    choices: 1,
    toolNames: toolNames(body.tools),
    cacheWrites: false,
    idPrefix: 'resp_',
  });
  return { plan, stream: body.stream === true, wire: responsesWire(input, plan) };
}
