import type { RequestInfo } from '../record.js';
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
  name,
  num,
  obj,
  optional,
  parseJson,
  str,
  unreadable,
} from './json.js';
import type { Detection, ParsedResponse, ParsedUsage, ProviderAdapter, ResponseParser } from './types.js';
import { emptyParsed, withUnreadable } from './types.js';

/**
 * Anthropic Messages API. https://docs.anthropic.com/en/api/messages
 * Streams: https://docs.anthropic.com/en/docs/build-with-claude/streaming
 *
 * Anthropic's `input_tokens` excludes cache reads and writes; llm-meter's input tokens include
 * them (as the GenAI semantic conventions count), so they are added here.
 */

interface AnthropicDetection extends Detection {
  countTokens: boolean;
}

/** The fields llm-meter reads have the types the API takes (see `optional`). */
function wellTyped(body: Json): boolean {
  return (
    optional(body.model, isString) &&
    optional(body.stream, isBoolean) &&
    optional(body.max_tokens, isCount) &&
    optional(body.messages, isArray) &&
    optional(body.system, isStringOrArray) &&
    optional(body.tools, isArray)
  );
}

function parseRequest(body: Json, detection: Detection): RequestInfo {
  return {
    parsed: wellTyped(body),
    model: name(body.model) ?? detection.urlModel,
    stream: body.stream === true,
    maxTokens: limit(body.max_tokens),
    temperature: num(body.temperature),
    choices: null,
    toolCount: arr(body.tools)?.length ?? 0,
    toolRounds: countToolRounds(body),
  };
}

/**
 * Raw usage fields are kept separately because stream events report them piecewise:
 * `message_start` has input and cache figures, `message_delta` has the cumulative output
 * (and, on newer API versions, cumulative input figures too). Each figure replaces the last.
 */
interface RawUsage {
  input: number | null;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  /** A figure was on the wire but not a count. */
  unreadable: boolean;
}

function mergeUsage(into: RawUsage, usage: Json | null): void {
  if (!usage) return;
  const { input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens } = usage;
  if (num(input_tokens) !== null) into.input = int(input_tokens);
  if (num(output_tokens) !== null) into.output = int(output_tokens);
  if (num(cache_read_input_tokens) !== null) into.cacheRead = int(cache_read_input_tokens);
  if (num(cache_creation_input_tokens) !== null) into.cacheWrite = int(cache_creation_input_tokens);
  if (unreadable(input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens)) {
    into.unreadable = true;
  }
}

function normalize(raw: RawUsage): ParsedUsage | null {
  if (raw.input === null) return null;
  return withUnreadable(
    {
      // Each figure is at most 2^53 − 1 (int): the sum stays finite; src/usage.ts bounds it.
      inputTokens: raw.input + raw.cacheRead + raw.cacheWrite,
      outputTokens: raw.output,
      cacheReadTokens: raw.cacheRead,
      cacheWriteTokens: raw.cacheWrite,
      reasoningTokens: 0,
    },
    raw.unreadable,
  );
}

function readError(body: Json): { code: string | null; type: string | null; message: string | null } {
  const error = obj(body.error) ?? body;
  return { code: null, type: clip(str(error.type)), message: clip(str(error.message), 500) };
}

function createMessagesParser(): ResponseParser {
  const out: ParsedResponse = emptyParsed();
  const raw: RawUsage = { input: null, output: 0, cacheRead: 0, cacheWrite: 0, unreadable: false };
  // A tool_use block's input streams as partial JSON; a non-streamed one is already an object.
  const argumentCheck = createArgumentCheck();

  function takeMessage(message: Json): void {
    out.responseId ??= str(message.id);
    out.responseModel ??= str(message.model);
    mergeUsage(raw, obj(message.usage));
  }

  return {
    event(event) {
      const data = obj(parseJson(event.data));
      if (!data) return false;
      const type = str(data.type) ?? event.event;
      switch (type) {
        case 'message_start': {
          const message = obj(data.message);
          if (message) takeMessage(message);
          return false;
        }
        case 'content_block_start': {
          const block = obj(data.content_block);
          const blockType = str(block?.type);
          if (blockType === 'tool_use' || blockType === 'server_tool_use') out.toolCalls++;
          return false;
        }
        case 'content_block_delta': {
          const delta = obj(data.delta);
          const partial = str(delta?.partial_json);
          if (partial) argumentCheck.fragment(String(int(data.index)), partial);
          const piece = str(delta?.text) ?? partial ?? str(delta?.thinking);
          if (piece) out.outputText = appendCapped(out.outputText, piece);
          return piece !== null;
        }
        case 'message_delta': {
          const reason = str(obj(data.delta)?.stop_reason);
          if (reason) out.finishReasons = [reason];
          mergeUsage(raw, obj(data.usage));
          return false;
        }
        case 'message_stop':
          out.terminal = true;
          return false;
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
      out.terminal = true;
      takeMessage(b);
      const reason = str(b.stop_reason);
      if (reason) out.finishReasons = [reason];
      // count_tokens answers `{ input_tokens }` only.
      if (b.type === undefined && num(b.input_tokens) !== null) raw.input = int(b.input_tokens);
      for (const c of arr(b.content) ?? []) {
        const block = obj(c);
        if (!block) continue;
        const blockType = str(block.type);
        if (blockType === 'tool_use' || blockType === 'server_tool_use') out.toolCalls++;
        const text = str(block.text);
        if (text) out.outputText = appendCapped(out.outputText, text);
      }
    },
    result() {
      out.usage = normalize(raw);
      out.invalidToolCalls = argumentCheck.invalid();
      return out;
    },
  };
}

export const anthropicAdapter: ProviderAdapter = {
  id: 'anthropic',
  detect(url, method) {
    if (method !== 'POST') return null;
    const p = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
    const countTokens = p.endsWith('/v1/messages/count_tokens');
    if (!countTokens && !p.endsWith('/v1/messages')) return null;
    const detection: AnthropicDetection = {
      adapter: anthropicAdapter,
      provider: 'anthropic',
      operation: countTokens ? 'count_tokens' : 'chat',
      urlModel: null,
      countTokens,
    };
    return detection;
  },
  parseRequest,
  createParser: () => createMessagesParser(),
  errorBody: (type, message) => ({ type: 'error', error: { type, message } }),
  parseError(body) {
    const b = obj(body);
    return b ? readError(b) : { code: null, type: null, message: null };
  },
  readHeaders: (headers) => readRateLimitHeaders(headers, 'anthropic'),
  bodyShape: () => 'anthropic-messages',
  withMaxOutputTokens(body, detection, limit) {
    if ((detection as AnthropicDetection).countTokens || body.max_tokens !== undefined) return null;
    return { ...body, max_tokens: limit };
  },
};

/** Assistant turns holding `tool_use` content blocks. */
function countToolRounds(body: Json): number {
  return countTurns(body.messages, 'assistant', (m) =>
    (arr(m.content) ?? []).some((block) => obj(block)?.type === 'tool_use'),
  );
}
