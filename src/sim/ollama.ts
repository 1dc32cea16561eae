import { EMBEDDING_DIMENSIONS, embed } from './embeddings.js';
import { type Block, type Finish, inputOnlyPlan, makePlan, type Plan, totalOutputTokens } from './plan.js';
import type { SseEvent } from './sse.js';
import { countMessages, countOllamaGenerateInput, countPlainInputs, countText } from './text.js';
import type { Fault } from './types.js';
import {
  bodyOnlyWire,
  type HttpReply,
  isObject,
  type Json,
  optionalNumber,
  type Prepared,
  type RouteInput,
  toolNames,
  type Wire,
} from './wire.js';

/*
 * Ollama's native API (https://github.com/ollama/ollama/blob/main/docs/api.md): `/api/chat`,
 * `/api/generate`, `/api/embed` and the legacy `/api/embeddings`. Chat and generate stream NDJSON
 * unless the body says `"stream": false`; the last object (`done: true`) carries the counts and
 * the durations in nanoseconds. Model loading (and waiting for a slot) is `load_duration`.
 * Ollama has no wire field for cache hits or reasoning tokens, and no content filter: that fault
 * only ends a stream early.
 */

export type OllamaEndpoint = 'chat' | 'generate' | 'embed' | 'embeddings';

const DONE_REASON: Record<Finish, string> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'stop',
  content_filter: 'stop',
};

const ns = (ms: number): number => Math.round(ms * 1e6);

/** The final object's figures, from the plan's phases. */
function finalFigures(plan: Plan): Json {
  const load = ns(plan.queueMs);
  const prompt = ns(plan.prefillMs);
  const decode = ns(plan.reasoningMs + plan.generationMs);
  return {
    total_duration: load + prompt + decode,
    load_duration: load,
    prompt_eval_count: plan.inputTokens,
    prompt_eval_duration: prompt,
    eval_count: totalOutputTokens(plan),
    eval_duration: decode,
  };
}

function ollamaError(fault: Fault, model: string): HttpReply | null {
  const reply = (status: number, error: string): HttpReply => ({ status, headers: {}, body: { error } });
  switch (fault) {
    case 'rate_limit':
      return reply(429, 'too many requests, please try again later');
    case 'server_error':
      return reply(500, 'llama runner process has terminated: exit status 2');
    case 'overloaded':
      return reply(503, 'server busy, please try again.  maximum pending requests exceeded');
    case 'bad_request':
      return reply(400, 'invalid request (simulated)');
    case 'context_length':
      return reply(400, 'the input length exceeds the context length');
    case 'auth':
      return reply(401, 'unauthorized');
    case 'forbidden':
      return reply(403, 'forbidden');
    case 'not_found':
      return reply(404, `model "${model}" not found, try pulling it first`);
    default:
      return null;
  }
}

const toolCall = (block: Extract<Block, { kind: 'tool' }>): Json => ({
  function: { name: block.name, arguments: block.input },
});

function streamingWire(endpoint: 'chat' | 'generate'): Wire {
  const line = (plan: Plan, fields: Json): SseEvent => ({
    data: JSON.stringify({ model: plan.model, created_at: new Date().toISOString(), ...fields }),
  });
  const message = (content: string, calls: Json[] = []): Json => ({
    role: 'assistant',
    content,
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  });
  const final = (plan: Plan, text: string, calls: Json[]): Json => ({
    ...(endpoint === 'chat' ? { message: message(text, calls) } : { response: text }),
    done_reason: DONE_REASON[plan.finish],
    done: true,
    // /api/generate returns the conversation's context tokens for the next call.
    ...(endpoint === 'generate' ? { context: [128006, 882, 128007] } : {}),
    ...finalFigures(plan),
  });
  return {
    filterInBody: false,
    framing: 'ndjson',
    headers: () => ({}),
    error: (fault, _behavior, plan) => ollamaError(fault, plan.model),
    body: (plan) => {
      const blocks = plan.choices[0]?.blocks ?? [];
      const text = blocks.map((b) => (b.kind === 'text' ? b.text : '')).join('');
      const calls = blocks.flatMap((b) => (b.kind === 'tool' ? [toolCall(b)] : []));
      return { model: plan.model, created_at: new Date().toISOString(), ...final(plan, text, calls) };
    },
    start: () => [],
    step: (plan, step) => {
      const choice = plan.choices[0]!;
      const piece = choice.pieces[step]!;
      const block = choice.blocks[piece.block]!;
      if (block.kind === 'tool') {
        // Tool calls leave whole, with their last token, and only from /api/chat.
        return piece.last ? [line(plan, { message: message('', [toolCall(block)]), done: false })] : [];
      }
      const fields = endpoint === 'chat' ? { message: message(piece.text) } : { response: piece.text };
      return [line(plan, { ...fields, done: false })];
    },
    end: (plan) => [line(plan, final(plan, '', []))],
    errorEvent: (plan) => [
      line(plan, { error: 'an error was encountered while running the model: unexpected EOF' }),
    ],
  };
}

function embedInputs(input: unknown): unknown[] {
  if (typeof input === 'string') return [input];
  return Array.isArray(input) ? input : [];
}

export function ollamaRoute(endpoint: OllamaEndpoint): (input: RouteInput) => Prepared {
  return (input) => {
    const { body } = input;
    const error: Wire['error'] = (fault, _behavior, plan) => ollamaError(fault, plan.model);
    const dimensions = optionalNumber(body.dimensions) ?? EMBEDDING_DIMENSIONS;
    if (endpoint === 'embed') {
      const plan = inputOnlyPlan(input, countPlainInputs(body.input));
      const wire = bodyOnlyWire(
        (p) => ({
          model: p.model,
          embeddings: embedInputs(body.input).map((item) => embed(item, dimensions)),
          total_duration: ns(p.queueMs + p.prefillMs),
          load_duration: ns(p.queueMs),
          prompt_eval_count: p.inputTokens,
        }),
        () => ({}),
        error,
      );
      return { plan, stream: false, wire };
    }
    if (endpoint === 'embeddings') {
      const prompt = typeof body.prompt === 'string' ? body.prompt : '';
      const plan = inputOnlyPlan(input, countText(prompt));
      const wire = bodyOnlyWire(
        () => ({ embedding: embed(prompt, dimensions) }),
        () => ({}),
        error,
      );
      return { plan, stream: false, wire };
    }
    const options = isObject(body.options) ? body.options : {};
    const numPredict = optionalNumber(options.num_predict);
    const chat = endpoint === 'chat';
    const plan = makePlan({
      // /api/generate has no tools: it answers in text.
      behavior: {
        ...input.behavior,
        cacheReadTokens: 0,
        reasoningTokens: 0,
        ...(chat ? {} : { toolCalls: 0 }),
      },
      model: input.model,
      inputTokens: chat ? countMessages(body.messages, body.tools) : countOllamaGenerateInput(body),
      // -1 (and -2) mean "until the context is full".
      maxTokens: numPredict !== undefined && numPredict >= 0 ? numPredict : undefined,
      choices: 1,
      toolNames: chat ? toolNames(body.tools) : [],
      cacheWrites: false,
      idPrefix: '',
    });
    // Ollama streams unless told not to.
    return { plan, stream: body.stream !== false, wire: streamingWire(endpoint) };
  };
}
