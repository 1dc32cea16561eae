import type { Operation, RequestInfo } from '../record.js';
import { readRateLimitHeaders } from './headers.js';
import {
  appendCapped,
  arr,
  clip,
  countTurns,
  createArgumentCheck,
  int,
  isArray,
  isBoolean,
  isCount,
  isString,
  isStringOrArray,
  type Json,
  limit,
  MAX_CHOICES,
  name,
  num,
  obj,
  optional,
  parseJson,
  str,
  unreadable,
} from './json.js';
import type {
  BodyShape,
  Detection,
  EventFilter,
  ParsedResponse,
  ParsedUsage,
  ProviderAdapter,
  ProviderError,
  ResponseParser,
  ServerTiming,
  StreamEvent,
} from './types.js';
import { emptyParsed, inputOnlyUsage, withUnreadable } from './types.js';

/**
 * OpenAI wire formats on any host: Chat Completions, Responses, Embeddings and legacy
 * Completions, as served by api.openai.com, Azure OpenAI (classic deployments and v1), and
 * OpenAI-compatible servers (Groq, vLLM, llama.cpp, Together, DeepSeek, Ollama's /v1 ...).
 * https://platform.openai.com/docs/api-reference
 */

type Kind = 'chat' | 'responses' | 'embeddings' | 'completions';
const OPERATION: Record<Kind, Operation> = {
  chat: 'chat',
  responses: 'chat',
  embeddings: 'embeddings',
  completions: 'text_completion',
};
const SHAPE: Record<Kind, BodyShape> = {
  chat: 'openai-chat',
  responses: 'openai-responses',
  embeddings: 'openai-embeddings',
  completions: 'openai-completions',
};

interface OpenAIDetection extends Detection {
  kind: Kind;
}

const HOST_PROVIDERS: [RegExp, string][] = [
  [
    /(^|\.)openai\.azure\.com$|(^|\.)cognitiveservices\.azure\.com$|(^|\.)services\.ai\.azure\.com$/,
    'azure.ai.openai',
  ],
  [/(^|\.)api\.openai\.com$/, 'openai'],
  [/(^|\.)groq\.com$/, 'groq'],
  [/(^|\.)deepseek\.com$/, 'deepseek'],
  [/(^|\.)together\.(xyz|ai)$/, 'together_ai'],
  [/(^|\.)mistral\.ai$/, 'mistral_ai'],
  [/(^|\.)x\.ai$/, 'x_ai'],
  [/(^|\.)fireworks\.ai$/, 'fireworks'],
  [/(^|\.)openrouter\.ai$/, 'openrouter'],
  [/(^|\.)perplexity\.ai$/, 'perplexity'],
  // Google's OpenAI-compatible endpoints: .../v1beta/openai/ and Vertex AI's .../endpoints/openapi/.
  [/(^|\.)generativelanguage\.googleapis\.com$/, 'gcp.gemini'],
  [/(^|[.-])aiplatform\.googleapis\.com$/, 'gcp.vertex_ai'],
  [/(^|\.)ollama\.com$/, 'ollama'],
];

/** Providers known to accept `stream_options.include_usage`. */
const STREAM_USAGE_PROVIDERS = new Set([
  'openai',
  'azure.ai.openai',
  'groq',
  'deepseek',
  'together_ai',
  'fireworks',
  'openrouter',
  'openai_compatible',
  // https://github.com/ollama/ollama/blob/main/docs/openai.md (stream_options.include_usage)
  'ollama',
]);

function providerFor(url: URL): string {
  for (const [re, name] of HOST_PROVIDERS) if (re.test(url.hostname)) return name;
  if (url.pathname.startsWith('/openai/deployments/')) return 'azure.ai.openai';
  if (url.port === '11434') return 'ollama';
  return 'openai_compatible';
}

function kindOf(pathname: string): { kind: Kind; deployment: string | null } | null {
  const p = pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
  let kind: Kind | null = null;
  if (p.endsWith('/chat/completions')) kind = 'chat';
  else if (p.endsWith('/responses')) kind = 'responses';
  else if (p.endsWith('/embeddings')) kind = 'embeddings';
  else if (p.endsWith('/completions')) kind = 'completions';
  if (kind === null) return null;
  const m = /\/openai\/deployments\/([^/]+)\//.exec(p);
  return { kind, deployment: m ? decodeURIComponent(m[1]!) : null };
}

/** The field that carries the input, per endpoint. */
const INPUT_FIELD: Record<Kind, string> = {
  chat: 'messages',
  responses: 'input',
  embeddings: 'input',
  completions: 'prompt',
};

/** The fields llm-meter reads have the types the API takes (see `optional`). */
function wellTyped(body: Json, kind: Kind): boolean {
  return (
    optional(body.model, isString) &&
    optional(body.stream, isBoolean) &&
    optional(body.max_completion_tokens, isCount) &&
    optional(body.max_tokens, isCount) &&
    optional(body.max_output_tokens, isCount) &&
    optional(body.n, isCount) &&
    optional(body.tools, isArray) &&
    optional(body.functions, isArray) &&
    optional(body[INPUT_FIELD[kind]], kind === 'chat' ? isArray : isStringOrArray)
  );
}

function parseRequest(body: Json, detection: Detection): RequestInfo {
  const tools = arr(body.tools)?.length ?? arr(body.functions)?.length ?? 0;
  return {
    parsed: wellTyped(body, (detection as OpenAIDetection).kind),
    model: name(body.model) ?? detection.urlModel,
    stream: body.stream === true,
    maxTokens: limit(body.max_completion_tokens) ?? limit(body.max_tokens) ?? limit(body.max_output_tokens),
    temperature: num(body.temperature),
    choices: limit(body.n),
    toolCount: tools,
    toolRounds: countToolRounds(body, detection),
  };
}

const USAGE_NULL = /,\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,/;
const EMPTY_CHOICES = /"choices"\s*:\s*\[\s*\]/;

/**
 * With `include_usage`, OpenAI adds `"usage":null` to every chunk and one extra chunk with
 * empty `choices` carrying the usage before `[DONE]`. Hide both so the caller sees the stream
 * it asked for. https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options
 */
const hideStreamUsage: EventFilter = (event: StreamEvent) => {
  const { data } = event;
  if (EMPTY_CHOICES.test(data)) {
    const chunk = obj(parseJson(data));
    if (chunk && obj(chunk.usage)) {
      // Azure's first chunk has empty choices too, but carries prompt_filter_results, not usage.
      return 'drop';
    }
  }
  return USAGE_NULL.test(data) ? data.replace(USAGE_NULL, '') : 'keep';
};

function amendRequest(
  body: Json,
  info: RequestInfo,
  detection: Detection,
  options: { streamUsage: boolean },
): { body: Json; filter: EventFilter } | null {
  const d = detection as OpenAIDetection;
  if (!options.streamUsage || d.kind !== 'chat' || !info.stream) return null;
  if (!STREAM_USAGE_PROVIDERS.has(d.provider)) return null;
  const streamOptions = obj(body.stream_options);
  if (streamOptions?.include_usage === true) return null;
  return {
    body: { ...body, stream_options: { ...(streamOptions ?? {}), include_usage: true } },
    filter: hideStreamUsage,
  };
}

function chatUsage(usage: Json | null): ParsedUsage | null {
  if (!usage) return null;
  const input = num(usage.prompt_tokens) ?? num(usage.input_tokens);
  if (input === null) return null;
  const output = usage.completion_tokens ?? usage.output_tokens;
  const inDetails = obj(usage.prompt_tokens_details) ?? obj(usage.input_tokens_details);
  const outDetails = obj(usage.completion_tokens_details) ?? obj(usage.output_tokens_details);
  // DeepSeek reports cache hits at top level: https://api-docs.deepseek.com/guides/kv_cache
  const cacheRead = int(inDetails?.cached_tokens) || int(usage.prompt_cache_hit_tokens);
  return withUnreadable(
    {
      inputTokens: int(input),
      outputTokens: int(output),
      cacheReadTokens: cacheRead,
      cacheWriteTokens: 0,
      reasoningTokens: int(outDetails?.reasoning_tokens),
    },
    unreadable(output, inDetails?.cached_tokens, usage.prompt_cache_hit_tokens, outDetails?.reasoning_tokens),
  );
}

/** Server-reported splits: Groq (seconds), llama.cpp `timings`, vLLM `metrics`. */
function serverTiming(body: Json): ServerTiming | null {
  const groq = obj(obj(body.x_groq)?.usage) ?? obj(body.usage);
  if (groq && (num(groq.queue_time) !== null || num(groq.prompt_time) !== null)) {
    const s = (v: unknown) => {
      const n = num(v);
      return n === null ? null : n * 1000;
    };
    return {
      queueMs: s(groq.queue_time),
      prefillMs: s(groq.prompt_time),
      generationMs: s(groq.completion_time),
    };
  }
  const timings = obj(body.timings);
  if (timings && (num(timings.prompt_ms) !== null || num(timings.predicted_ms) !== null)) {
    return { queueMs: null, prefillMs: num(timings.prompt_ms), generationMs: num(timings.predicted_ms) };
  }
  const metrics = obj(body.metrics);
  if (metrics && num(metrics.queue_time_ms) !== null) {
    const queue = num(metrics.queue_time_ms);
    const ttft = num(metrics.time_to_first_token_ms);
    return {
      queueMs: queue,
      prefillMs: ttft !== null && queue !== null ? Math.max(0, ttft - queue) : null,
      generationMs: num(metrics.generation_time_ms),
    };
  }
  return null;
}

/**
 * llama.cpp reports cached prompt tokens as `timings.cache_n` and usage without details; in a
 * stream the timings and the usage may come in different chunks, so this applies at the end.
 */
function withLlamaCppCache(usage: ParsedUsage | null, cacheN: number | null): ParsedUsage | null {
  if (!usage || !cacheN || usage.cacheReadTokens) return usage;
  return { ...usage, cacheReadTokens: int(cacheN) };
}

/** Distinct tool calls a stream's count keeps track of. */
const MAX_TOOL_CALLS = 4096;

function createChatParser(): ResponseParser {
  const out: ParsedResponse = emptyParsed();
  const seenToolCalls = new Set<string>();
  const argumentCheck = createArgumentCheck();
  const finish = new Map<number, string>();
  let cacheN: number | null = null;

  function takeCommon(chunk: Json): void {
    // Azure's first stream chunk names no id or model (`""`): wait for a real one.
    out.responseId ??= str(chunk.id) || null;
    out.responseModel ??= str(chunk.model) || null;
    const usage = chatUsage(obj(chunk.usage)) ?? chatUsage(obj(obj(chunk.x_groq)?.usage));
    // Usage is cumulative where it repeats (vLLM continuous_usage_stats): replace, never add.
    if (usage) out.usage = usage;
    cacheN = num(obj(chunk.timings)?.cache_n) ?? cacheN;
    const timing = serverTiming(chunk);
    if (timing) out.serverTiming = timing;
    const error = obj(chunk.error);
    if (error) out.streamError = readError(error);
  }

  return {
    event(event) {
      if (event.data === '[DONE]') {
        out.terminal = true;
        return false;
      }
      const chunk = obj(parseJson(event.data));
      if (!chunk) return false;
      takeCommon(chunk);
      let output = false;
      for (const c of arr(chunk.choices) ?? []) {
        const choice = obj(c);
        if (!choice) continue;
        const index = int(choice.index);
        const reason = str(choice.finish_reason);
        if (reason && (finish.size < MAX_CHOICES || finish.has(index))) finish.set(index, reason);
        const delta = obj(choice.delta);
        const text = str(delta?.content) ?? str(choice.text);
        if (text) {
          out.outputText = appendCapped(out.outputText, text);
          output = true;
        }
        const refusal = str(delta?.refusal);
        if (refusal) output = true;
        const reasoning = str(delta?.reasoning_content) ?? str(delta?.reasoning);
        if (reasoning) output = true;
        for (const t of arr(delta?.tool_calls) ?? []) {
          const call = obj(t);
          if (!call) continue;
          const key = `${index}:${int(call.index)}`;
          // Held per call for the count; a stream naming more calls than any response has is not.
          if (seenToolCalls.size < MAX_TOOL_CALLS) seenToolCalls.add(key);
          const fn = obj(call.function);
          const args = str(fn?.arguments) ?? '';
          if (args) argumentCheck.fragment(key, args);
          out.outputText = appendCapped(out.outputText, (str(fn?.name) ?? '') + args);
          output = true;
        }
      }
      return output;
    },
    json(body) {
      const b = obj(body);
      if (!b) return;
      takeCommon(b);
      out.terminal = true;
      for (const c of arr(b.choices) ?? []) {
        const choice = obj(c);
        if (!choice) continue;
        const reason = str(choice.finish_reason);
        const index = int(choice.index);
        if (reason && (finish.size < MAX_CHOICES || finish.has(index))) finish.set(index, reason);
        const message = obj(choice.message);
        const text = str(message?.content) ?? str(choice.text);
        if (text) out.outputText = appendCapped(out.outputText, text);
        const calls = arr(message?.tool_calls) ?? [];
        out.toolCalls += calls.length;
        for (const call of calls) argumentCheck.whole(str(obj(obj(call)?.function)?.arguments) ?? '');
      }
    },
    result() {
      out.finishReasons = [...finish.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
      out.toolCalls = Math.max(out.toolCalls, seenToolCalls.size);
      out.invalidToolCalls = argumentCheck.invalid();
      out.usage = withLlamaCppCache(out.usage, cacheN);
      return out;
    },
  };
}

function responsesUsage(usage: Json | null): ParsedUsage | null {
  if (!usage) return null;
  const input = num(usage.input_tokens);
  if (input === null) return null;
  const cached = obj(usage.input_tokens_details)?.cached_tokens;
  const reasoning = obj(usage.output_tokens_details)?.reasoning_tokens;
  return withUnreadable(
    {
      inputTokens: int(input),
      outputTokens: int(usage.output_tokens),
      cacheReadTokens: int(cached),
      cacheWriteTokens: 0,
      reasoningTokens: int(reasoning),
    },
    unreadable(usage.output_tokens, cached, reasoning),
  );
}

/** Responses API: https://platform.openai.com/docs/api-reference/responses-streaming */
function createResponsesParser(): ResponseParser {
  const out: ParsedResponse = emptyParsed();

  function takeResponse(response: Json): void {
    out.responseId = str(response.id) ?? out.responseId;
    out.responseModel = str(response.model) ?? out.responseModel;
    const usage = responsesUsage(obj(response.usage));
    if (usage) out.usage = usage;
    const status = str(response.status);
    const incomplete = str(obj(response.incomplete_details)?.reason);
    if (status === 'completed') out.finishReasons = ['stop'];
    else if (incomplete) out.finishReasons = [incomplete];
    else if (status && status !== 'in_progress' && status !== 'queued') out.finishReasons = [status];
    const error = obj(response.error);
    if (error) out.streamError = readError(error);
    let calls = 0;
    let invalid = 0;
    for (const item of arr(response.output) ?? []) {
      const it = obj(item);
      if (it && /_call$/.test(str(it.type) ?? '')) calls++;
      if (it?.type === 'function_call') {
        const check = createArgumentCheck();
        check.whole(str(it.arguments) ?? '');
        invalid += check.invalid();
      }
    }
    out.toolCalls = Math.max(out.toolCalls, calls);
    // The final response lists every call with its whole arguments: judged there.
    out.invalidToolCalls = Math.max(out.invalidToolCalls, invalid);
  }

  return {
    event(event) {
      const data = obj(parseJson(event.data));
      if (!data) return false;
      const type = str(data.type) ?? event.event;
      switch (type) {
        case 'response.output_text.delta':
        case 'response.refusal.delta':
        case 'response.reasoning_summary_text.delta':
        case 'response.function_call_arguments.delta': {
          const delta = str(data.delta);
          if (delta) out.outputText = appendCapped(out.outputText, delta);
          return true;
        }
        case 'response.output_item.added': {
          const item = obj(data.item);
          if (item && /_call$/.test(str(item.type) ?? '')) out.toolCalls++;
          return false;
        }
        case 'response.created':
        case 'response.in_progress': {
          const response = obj(data.response);
          if (response) takeResponse(response);
          return false;
        }
        case 'response.completed':
        case 'response.incomplete':
        case 'response.failed': {
          const response = obj(data.response);
          if (response) takeResponse(response);
          out.terminal = true;
          return false;
        }
        case 'error':
          out.streamError = readError(data);
          return false;
        default:
          return false;
      }
    },
    json(body) {
      const b = obj(body);
      if (!b) return;
      takeResponse(b);
      out.terminal = true;
      for (const item of arr(b.output) ?? []) {
        for (const part of arr(obj(item)?.content) ?? []) {
          const text = str(obj(part)?.text);
          if (text) out.outputText = appendCapped(out.outputText, text);
        }
      }
    },
    result: () => out,
  };
}

function createEmbeddingsParser(): ResponseParser {
  const out: ParsedResponse = emptyParsed();
  return {
    event: () => false,
    json(body) {
      const b = obj(body);
      if (!b) return;
      out.terminal = true;
      out.responseModel = str(b.model);
      const usage = obj(b.usage);
      const input = num(usage?.prompt_tokens) ?? num(usage?.total_tokens);
      if (input !== null) {
        out.usage = inputOnlyUsage(input);
      }
    },
    result: () => out,
  };
}

function readError(error: Json): ProviderError {
  const inner = obj(error.error) ?? error;
  const code = inner.code;
  return {
    code: clip(typeof code === 'number' ? String(code) : str(code)),
    type: clip(str(inner.type)),
    message: clip(str(inner.message), 500),
  };
}

/** Hosts whose Chat Completions take `max_completion_tokens` (o-series models refuse `max_tokens`). */
const COMPLETION_TOKENS_PROVIDERS = new Set(['openai', 'azure.ai.openai']);

/**
 * The max output tokens field per endpoint: Chat Completions `max_completion_tokens` on
 * api.openai.com and Azure, `max_tokens` on compatible servers; Responses `max_output_tokens`;
 * Completions `max_tokens`.
 */
function withMaxOutputTokens(body: Json, detection: Detection, limit: number): Json | null {
  const { kind, provider } = detection as OpenAIDetection;
  switch (kind) {
    case 'chat':
      if (body.max_completion_tokens !== undefined || body.max_tokens !== undefined) return null;
      return COMPLETION_TOKENS_PROVIDERS.has(provider)
        ? { ...body, max_completion_tokens: limit }
        : { ...body, max_tokens: limit };
    case 'responses':
      return body.max_output_tokens === undefined ? { ...body, max_output_tokens: limit } : null;
    case 'completions':
      return body.max_tokens === undefined ? { ...body, max_tokens: limit } : null;
    default:
      return null;
  }
}

/**
 * Chat Completions: assistant messages with `tool_calls` (or the legacy `function_call`).
 * Responses: each run of adjacent `function_call` input items (a round's parallel calls are
 * adjacent; their outputs follow).
 */
function countToolRounds(body: Json, detection: Detection): number {
  if ((detection as OpenAIDetection).kind !== 'responses') {
    return countTurns(
      body.messages,
      'assistant',
      (m) => (arr(m.tool_calls)?.length ?? 0) > 0 || obj(m.function_call) !== null,
    );
  }
  let rounds = 0;
  let previous: unknown = null;
  for (const item of arr(body.input) ?? []) {
    const type = obj(item)?.type ?? null;
    if (type === 'function_call' && previous !== 'function_call') rounds++;
    previous = type;
  }
  return rounds;
}

export const openaiAdapter: ProviderAdapter = {
  id: 'openai',
  detect(url, method) {
    if (method !== 'POST') return null;
    const k = kindOf(url.pathname);
    if (!k) return null;
    const detection: OpenAIDetection = {
      adapter: openaiAdapter,
      provider: providerFor(url),
      operation: OPERATION[k.kind],
      urlModel: k.deployment,
      kind: k.kind,
    };
    return detection;
  },
  parseRequest,
  amendRequest,
  createParser(detection) {
    const kind = (detection as OpenAIDetection).kind;
    if (kind === 'responses') return createResponsesParser();
    if (kind === 'embeddings') return createEmbeddingsParser();
    return createChatParser();
  },
  errorBody: (type, message) => ({ error: { message, type, param: null, code: type } }),
  parseError(body) {
    const b = obj(body);
    return b ? readError(b) : { code: null, type: null, message: null };
  },
  readHeaders: (headers) => readRateLimitHeaders(headers, 'openai'),
  bodyShape: (detection) => SHAPE[(detection as OpenAIDetection).kind],
  withMaxOutputTokens,
};
