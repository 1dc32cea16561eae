import type { Operation, RequestInfo } from '../record.js';
import { readPlainHeaders } from './headers.js';
import {
  appendCapped,
  arr,
  clip,
  countTurns,
  int,
  isArray,
  isBoolean,
  isFiniteNumber,
  isObject,
  isString,
  type Json,
  limit,
  name,
  num,
  obj,
  optional,
  parseJson,
  str,
  unreadable,
  withNestedDefault,
} from './json.js';
import type {
  BodyFormat,
  BodyShape,
  Detection,
  ParsedResponse,
  ProviderAdapter,
  ProviderError,
  ResponseParser,
  ServerTiming,
} from './types.js';
import { emptyParsed, inputOnlyUsage, withUnreadable } from './types.js';

/**
 * Ollama's native API: `/api/chat`, `/api/generate`, `/api/embed` and the legacy
 * `/api/embeddings`. https://github.com/ollama/ollama/blob/main/docs/api.md
 * (Ollama's OpenAI-compatible `/v1/…` endpoints go through the OpenAI adapter.)
 *
 * Chat and generate stream NDJSON unless the body says `"stream": false`. The last object
 * (`done: true`) carries `prompt_eval_count`, `eval_count` and the durations in nanoseconds:
 * `load_duration` (loading the model, and waiting for it, counted as queue),
 * `prompt_eval_duration` (prefill) and `eval_duration` (generation).
 *
 * Detection: `/api/chat` and `/api/generate` are common paths on other servers (an app's own chat
 * route, often posting the Vercel AI SDK's UI messages), so on a host that is not known to be
 * Ollama (its port 11434, ollama.com) a call is metered only when its body is JSON naming a model
 * (`requiresJsonBody`): Ollama answers 400 to anything else ("model is required"), so what passes
 * unmetered is never generated. The decision is made from that one field Ollama requires, never
 * from fields it ignores: Go's JSON decoder skips unknown fields, so a body with extra ones
 * (`parts`, `id`, `"parts": null`) is served like any other and metered like any other. A field
 * llm-meter reads with a type Ollama does not take makes the call unparsed, not unmetered.
 * Ollama counts only the prompt tokens it evaluated: a prefix served from its cache is not in
 * `prompt_eval_count`.
 */

type Kind = 'chat' | 'generate' | 'embed' | 'embeddings';

const OPERATION: Record<Kind, Operation> = {
  chat: 'chat',
  generate: 'text_completion',
  embed: 'embeddings',
  embeddings: 'embeddings',
};

const SHAPE: Record<Kind, BodyShape> = {
  chat: 'openai-chat',
  generate: 'ollama-generate',
  embed: 'openai-embeddings',
  // The legacy body is `{ model, prompt }`: one plain prompt.
  embeddings: 'openai-completions',
};

interface OllamaDetection extends Detection {
  kind: Kind;
}

const PATH = /\/api\/(chat|generate|embed|embeddings)\/?$/;

/** Ollama's own port and its cloud: there, these paths are Ollama's whatever the body. */
function knownOllamaHost(url: URL): boolean {
  return url.port === '11434' || /(^|\.)ollama\.com$/.test(url.hostname);
}

/** A message whose content, if any, is text: Ollama takes no content parts (images go apart). */
function isOllamaMessage(value: unknown): boolean {
  const m = obj(value);
  return m !== null && optional(m.content, isString);
}

/** The fields llm-meter reads have the types Ollama takes (see `optional`). */
function wellTyped(body: Json, kind: Kind): boolean {
  const options = body.options;
  const common =
    optional(body.model, isString) &&
    optional(body.stream, isBoolean) &&
    optional(options, isObject) &&
    // num_predict -1 (and -2) mean "until the context is full": any number is a valid one.
    optional(obj(options)?.num_predict, isFiniteNumber);
  if (!common) return false;
  switch (kind) {
    case 'chat':
      return (
        optional(body.messages, (m) => arr(m)?.every(isOllamaMessage) ?? false) &&
        optional(body.tools, isArray)
      );
    case 'generate':
      return optional(body.prompt, isString);
    case 'embed':
      return optional(body.input, (i) => isString(i) || (arr(i)?.every(isString) ?? false));
    case 'embeddings':
      return optional(body.prompt, isString);
  }
}

function parseRequest(body: Json, detection: Detection): RequestInfo {
  const { kind } = detection as OllamaDetection;
  const options = obj(body.options);
  const generates = kind === 'chat' || kind === 'generate';
  return {
    parsed: wellTyped(body, kind),
    // null (no model, or not a name): Ollama refuses it, and on a shared path the call passes.
    model: name(body.model) || null,
    // Ollama streams unless told not to.
    stream: generates && body.stream !== false,
    // num_predict -1 (and -2) mean "until the context is full": no limit, which num() drops.
    maxTokens: limit(options?.num_predict),
    temperature: num(options?.temperature),
    choices: null,
    toolCount: kind === 'chat' ? (arr(body.tools)?.length ?? 0) : 0,
    toolRounds: kind === 'chat' ? countToolRounds(body) : 0,
  };
}

const ms = (nanos: unknown): number | null => {
  const n = num(nanos);
  return n === null ? null : n / 1e6;
};

function createParser(): ResponseParser {
  const out: ParsedResponse = emptyParsed();

  function takeFinal(o: Json): void {
    out.terminal = true;
    const reason = str(o.done_reason);
    if (reason) out.finishReasons = [reason];
    const { prompt_eval_count: prompt, eval_count: evals } = o;
    if (num(prompt) !== null || num(evals) !== null) {
      out.usage = withUnreadable(
        {
          inputTokens: int(prompt),
          outputTokens: int(evals),
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
        unreadable(prompt, evals),
      );
    }
    const queueMs = ms(o.load_duration);
    const timing: ServerTiming = {
      queueMs,
      prefillMs: ms(o.prompt_eval_duration),
      generationMs: ms(o.eval_duration),
    };
    // /api/embed reports only the total and the load: the rest is processing the input.
    const totalMs = ms(o.total_duration);
    if (timing.prefillMs === null && timing.generationMs === null && totalMs !== null && queueMs !== null) {
      timing.prefillMs = Math.max(0, totalMs - queueMs);
    }
    if (timing.queueMs !== null || timing.prefillMs !== null || timing.generationMs !== null) {
      out.serverTiming = timing;
    }
  }

  /** One object: a stream line, or the whole body. Returns whether it carried output. */
  function take(o: Json): boolean {
    out.responseModel ??= str(o.model);
    const error = o.error;
    if (error !== undefined && error !== null) {
      // An error line inside a 200 stream is the server's failure while generating.
      out.streamError = {
        code: null,
        type: 'server_error',
        message: clip(str(error) ?? str(obj(error)?.message), 500),
      };
      return false;
    }
    let output = false;
    const message = obj(o.message);
    const text = str(message?.content) ?? str(o.response);
    if (text) {
      out.outputText = appendCapped(out.outputText, text);
      output = true;
    }
    // Thinking tokens are inside eval_count.
    const thinking = str(message?.thinking) ?? str(o.thinking);
    if (thinking) {
      out.outputText = appendCapped(out.outputText, thinking);
      output = true;
    }
    for (const c of arr(message?.tool_calls) ?? []) {
      const fn = obj(obj(c)?.function);
      if (!fn) continue;
      out.toolCalls++;
      out.outputText = appendCapped(
        out.outputText,
        (str(fn.name) ?? '') + JSON.stringify(fn.arguments ?? {}),
      );
      output = true;
    }
    if (o.done === true) takeFinal(o);
    return output;
  }

  return {
    event(event) {
      const line = obj(parseJson(event.data));
      return line ? take(line) : false;
    },
    json(body) {
      const b = obj(body);
      if (!b) return;
      take(b);
      if (b.done === undefined) takeFinal(b);
      // An OpenAI-shaped embeddings answer from a server in front of Ollama.
      const usage = obj(b.usage);
      const prompt = num(usage?.prompt_tokens);
      if (!out.usage && prompt !== null) {
        out.usage = inputOnlyUsage(prompt);
      }
      out.terminal = true;
    },
    result: () => out,
  };
}

function readError(body: unknown): ProviderError {
  const b = obj(body);
  const error = b?.error;
  const message = str(error) ?? str(obj(error)?.message) ?? (typeof body === 'string' ? body : null);
  return { code: null, type: null, message: clip(message, 500) };
}

export const ollamaAdapter: ProviderAdapter = {
  id: 'ollama',
  detect(url, method) {
    if (method !== 'POST') return null;
    const match = PATH.exec(url.pathname);
    if (!match) return null;
    const kind = match[1] as Kind;
    const detection: OllamaDetection = {
      adapter: ollamaAdapter,
      provider: 'ollama',
      operation: OPERATION[kind],
      urlModel: null,
      requiresJsonBody: !knownOllamaHost(url),
      kind,
    };
    return detection;
  },
  parseRequest,
  createParser: () => createParser(),
  errorBody: (_type, message) => ({ error: message }),
  parseError: readError,
  readHeaders: readPlainHeaders,
  bodyFormat(detection, info, contentType): BodyFormat {
    const { kind } = detection as OllamaDetection;
    if (kind === 'embed' || kind === 'embeddings') return 'json';
    if (contentType.includes('application/x-ndjson')) return 'ndjson';
    if (contentType.includes('application/json')) return 'json';
    return info.stream ? 'ndjson' : 'json';
  },
  bodyShape: (detection) => SHAPE[(detection as OllamaDetection).kind],
  withMaxOutputTokens(body, detection, limit) {
    const { kind } = detection as OllamaDetection;
    if (kind !== 'chat' && kind !== 'generate') return null;
    return withNestedDefault(body, 'options', 'num_predict', limit);
  },
};

/** Assistant messages with `tool_calls`. */
function countToolRounds(body: Json): number {
  return countTurns(body.messages, 'assistant', (m) => (arr(m.tool_calls)?.length ?? 0) > 0);
}
