import type { Operation, RequestInfo } from '../record.js';
import { readPlainHeaders } from './headers.js';
import {
  appendCapped,
  arr,
  clip,
  countTurns,
  int,
  isArray,
  isCount,
  isObject,
  type Json,
  limit,
  MAX_CHOICES,
  MAX_NAME_CHARS,
  num,
  obj,
  optional,
  parseJson,
  str,
  withNestedDefault,
} from './json.js';
import type {
  BodyFormat,
  BodyShape,
  Detection,
  ParsedResponse,
  ParsedUsage,
  ProviderAdapter,
  ProviderError,
  ResponseParser,
} from './types.js';
import { emptyParsed, inputOnlyUsage, withUnreadable } from './types.js';

/**
 * Google Gemini, on the Generative Language API
 * (`https://generativelanguage.googleapis.com/v1beta/models/{model}:{method}`) and on Vertex AI
 * (`https://{region}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`,
 * and `…/endpoints/{id}:{method}` for deployed tuned models).
 * https://ai.google.dev/api/generate-content, https://ai.google.dev/api/embeddings,
 * https://ai.google.dev/api/tokens, https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest
 *
 * The model is in the URL, never in the body. `:streamGenerateContent?alt=sse` streams SSE;
 * without `alt=sse` the body is one JSON array whose elements arrive one by one.
 *
 * The API key may be in the `?key=` query: the URL is never recorded (only its host and port).
 */

type Method =
  | 'generateContent'
  | 'streamGenerateContent'
  | 'embedContent'
  | 'batchEmbedContents'
  | 'countTokens';

const OPERATION: Record<Method, Operation> = {
  generateContent: 'generate_content',
  streamGenerateContent: 'generate_content',
  embedContent: 'embeddings',
  batchEmbedContents: 'embeddings',
  countTokens: 'count_tokens',
};

interface GeminiDetection extends Detection {
  method: Method;
  /** `alt=sse` was asked for. */
  sse: boolean;
}

const PATH =
  /\/(?:models|tunedModels|endpoints)\/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents|countTokens)$/;
const VERTEX_HOST = /(?:^|[.-])aiplatform\.googleapis\.com$/;
const GEMINI_HOST = /(?:^|\.)generativelanguage\.googleapis\.com$/;
const VERTEX_PATH = /\/projects\/[^/]+\/locations\/[^/]+\/|\/publishers\/google\//;

/** Vertex AI by its host, or on any other host (a proxy, the simulator) by its path shape. */
function providerFor(url: URL): string {
  if (VERTEX_HOST.test(url.hostname)) return 'gcp.vertex_ai';
  if (GEMINI_HOST.test(url.hostname)) return 'gcp.gemini';
  return VERTEX_PATH.test(url.pathname) ? 'gcp.vertex_ai' : 'gcp.gemini';
}

/** Protobuf JSON accepts both lowerCamelCase and the proto's snake_case field names. */
function field(o: Json | null, camel: string, snake: string): unknown {
  return o ? (o[camel] ?? o[snake]) : undefined;
}

function countTools(tools: unknown): number {
  let count = 0;
  for (const t of arr(tools) ?? []) {
    const tool = obj(t);
    if (!tool) continue;
    const declarations = arr(field(tool, 'functionDeclarations', 'function_declarations'));
    // A built-in tool (googleSearch, codeExecution, urlContext…) is one tool.
    count += declarations ? declarations.length : 1;
  }
  return count;
}

function parseRequest(body: Json, detection: Detection): RequestInfo {
  const d = detection as GeminiDetection;
  const wrapped = obj(field(body, 'generateContentRequest', 'generate_content_request'));
  const request = d.method === 'countTokens' && wrapped ? wrapped : body;
  const rawConfig = field(request, 'generationConfig', 'generation_config');
  const config = obj(rawConfig);
  const maxTokens = field(config, 'maxOutputTokens', 'max_output_tokens');
  const choices = field(config, 'candidateCount', 'candidate_count');
  // The fields llm-meter reads have the types the API takes (see `optional`).
  const wellTyped =
    optional(rawConfig, isObject) &&
    optional(maxTokens, isCount) &&
    optional(choices, isCount) &&
    optional(request.contents, isArray) &&
    optional(request.tools, isArray);
  return {
    parsed: wellTyped,
    model: detection.urlModel,
    stream: d.method === 'streamGenerateContent',
    maxTokens: limit(maxTokens),
    temperature: num(config?.temperature),
    choices: limit(choices),
    toolCount: countTools(request.tools),
    toolRounds: countToolRounds(body),
  };
}

/**
 * `promptTokenCount` includes `cachedContentTokenCount`; `toolUsePromptTokenCount` (the results
 * of built-in tools fed back to the model) is input outside it; `thoughtsTokenCount` is output
 * outside `candidatesTokenCount`, billed at the output price.
 * https://ai.google.dev/api/generate-content#UsageMetadata
 */
export function geminiUsage(usage: Json | null): ParsedUsage | null {
  if (!usage) return null;
  const prompt = count(usage.promptTokenCount);
  if (prompt === null) return null;
  const toolUse = usage.toolUsePromptTokenCount;
  const thoughts = usage.thoughtsTokenCount;
  const candidates = usage.candidatesTokenCount;
  const cached = usage.cachedContentTokenCount;
  return withUnreadable(
    {
      // Each figure is at most 2^53 − 1: the sums stay finite; src/usage.ts bounds them.
      inputTokens: prompt + (count(toolUse) ?? 0),
      outputTokens: (count(candidates) ?? 0) + (count(thoughts) ?? 0),
      cacheReadTokens: count(cached) ?? 0,
      cacheWriteTokens: 0,
      reasoningTokens: count(thoughts) ?? 0,
    },
    [toolUse, thoughts, candidates, cached].some((v) => v !== undefined && v !== null && count(v) === null),
  );
}

/**
 * A proto3 JSON integer: a number, or its decimal string (how int64 fields are written, and what
 * parsers accept for any integer, https://protobuf.dev/programming-guides/json/), as a whole
 * number of at most 2^53 − 1; null when absent or not a count.
 */
function count(value: unknown): number | null {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return num(n) === null ? null : int(n);
}

/** `{error:{code,message,status,details}}`, also wrapped in a one-element array (JSON-array streams). */
function readError(body: unknown): ProviderError {
  const outer = obj(body) ?? obj(arr(body)?.[0]);
  const error = obj(outer?.error);
  if (!error) {
    const text = typeof body === 'string' ? body : null;
    return { code: null, type: null, message: clip(text, 500) };
  }
  const status = str(error.status);
  // ErrorInfo.reason says more than the status: API_KEY_INVALID inside an INVALID_ARGUMENT.
  // RetryInfo.retryDelay is the only place Gemini names how long to wait after a 429.
  let reason: string | null = null;
  let retryAfterMs: number | null = null;
  for (const d of arr(error.details) ?? []) {
    const detail = obj(d);
    const type = str(detail?.['@type']) ?? '';
    if (detail && /ErrorInfo$/.test(type)) reason = str(detail.reason);
    if (detail && /RetryInfo$/.test(type)) retryAfterMs = durationMs(detail.retryDelay);
  }
  const code = num(error.code);
  return {
    code: clip(reason ?? status ?? (code === null ? null : String(code))),
    type: clip(status),
    message: clip(str(error.message), 500),
    retryAfterMs,
  };
}

/**
 * A google.protobuf.Duration in its JSON form: decimal seconds with an `s` suffix ("2s",
 * "0.5s", "1.000340012s"), https://protobuf.dev/reference/protobuf/google.protobuf/#duration.
 */
function durationMs(value: unknown): number | null {
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(value.trim()) : null;
  if (!match) return null;
  const ms = Math.round(Number.parseFloat(match[1]!) * 1000);
  return Number.isFinite(ms) ? ms : null;
}

function createGenerateParser(): ResponseParser {
  const out: ParsedResponse = emptyParsed();
  const finish = new Map<number, string>();

  /** One GenerateContentResponse: the whole body, or one stream chunk whose parts are new. */
  function take(response: Json): boolean {
    out.responseId ??= str(response.responseId);
    out.responseModel ??= str(response.modelVersion);
    // Every chunk carries the usage so far: replace, never add.
    const usage = geminiUsage(obj(response.usageMetadata));
    if (usage) out.usage = usage;
    if (obj(response.error)) out.streamError = readError(response);
    const blocked = str(obj(response.promptFeedback)?.blockReason);
    if (blocked) {
      finish.set(-1, blocked);
      out.terminal = true;
    }
    let output = false;
    for (const c of arr(response.candidates) ?? []) {
      const candidate = obj(c);
      if (!candidate) continue;
      const reason = str(candidate.finishReason);
      if (reason) {
        const index = int(candidate.index);
        if (finish.size < MAX_CHOICES || finish.has(index)) finish.set(index, reason);
        // The last chunk carries the finish reason and the totals; there is no other terminator.
        out.terminal = true;
      }
      for (const p of arr(obj(candidate.content)?.parts) ?? []) {
        const part = obj(p);
        if (!part) continue;
        const text = str(part.text);
        if (text) {
          out.outputText = appendCapped(out.outputText, text);
          output = true;
        }
        const call = obj(part.functionCall);
        if (call) {
          out.toolCalls++;
          out.outputText = appendCapped(
            out.outputText,
            (str(call.name) ?? '') + JSON.stringify(call.args ?? {}),
          );
          output = true;
        }
        if (part.executableCode || part.inlineData) output = true;
      }
    }
    return output;
  }

  return {
    event(event) {
      const chunk = obj(parseJson(event.data));
      return chunk ? take(chunk) : false;
    },
    json(body) {
      const b = obj(body);
      if (!b) return;
      take(b);
      out.terminal = true;
    },
    result() {
      out.finishReasons = [...finish.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
      return out;
    },
  };
}

/** Embeddings answer no usage on the Generative Language API (it is then counted); countTokens its count. */
function createUnaryParser(method: Method): ResponseParser {
  const out: ParsedResponse = emptyParsed();
  return {
    event: () => false,
    json(body) {
      const b = obj(body);
      if (!b) return;
      out.terminal = true;
      if (method === 'countTokens') {
        const total = count(b.totalTokens);
        if (total !== null) {
          out.usage = inputOnlyUsage(total);
        }
        return;
      }
      out.usage = geminiUsage(obj(b.usageMetadata));
    },
    result: () => out,
  };
}

export const geminiAdapter: ProviderAdapter = {
  id: 'gemini',
  detect(url, method) {
    if (method !== 'POST') return null;
    const match = PATH.exec(url.pathname);
    if (!match) return null;
    let model: string;
    try {
      model = decodeURIComponent(match[1]!);
    } catch {
      model = match[1]!;
    }
    model = model.slice(0, MAX_NAME_CHARS);
    const name = match[2] as Method;
    const detection: GeminiDetection = {
      adapter: geminiAdapter,
      provider: providerFor(url),
      operation: OPERATION[name],
      urlModel: model,
      urlStream: name === 'streamGenerateContent',
      method: name,
      sse: url.searchParams.get('alt') === 'sse',
    };
    return detection;
  },
  parseRequest,
  createParser(detection) {
    const { method } = detection as GeminiDetection;
    return method === 'generateContent' || method === 'streamGenerateContent'
      ? createGenerateParser()
      : createUnaryParser(method);
  },
  // Google APIs put the machine-readable reason in an ErrorInfo detail.
  errorBody: (type, message) => ({
    error: {
      code: 429,
      message,
      status: 'RESOURCE_EXHAUSTED',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: type.toUpperCase(),
          domain: 'llm-meter',
        },
      ],
    },
  }),
  parseError: readError,
  readHeaders: readPlainHeaders,
  bodyFormat(detection, _info, contentType): BodyFormat {
    const d = detection as GeminiDetection;
    if (d.method !== 'streamGenerateContent') return 'json';
    return d.sse || contentType.includes('text/event-stream') ? 'sse' : 'json-array';
  },
  bodyShape(detection): BodyShape {
    const { method } = detection as GeminiDetection;
    return method === 'embedContent' || method === 'batchEmbedContents' ? 'gemini-embed' : 'gemini-generate';
  },
  withMaxOutputTokens(body, detection, limit) {
    const { method } = detection as GeminiDetection;
    if (method !== 'generateContent' && method !== 'streamGenerateContent') return null;
    return withNestedDefault(body, 'generationConfig', 'maxOutputTokens', limit);
  },
};

/** Model turns holding `functionCall` parts. */
function countToolRounds(body: Json): number {
  return countTurns(body.contents, 'model', (c) =>
    (arr(c.parts) ?? []).some(
      (p) => obj(obj(p)?.functionCall) !== null || obj(obj(p)?.function_call) !== null,
    ),
  );
}
