import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/**
 * Output vocabulary: each word is exactly one o200k_base token both bare and after a space, and
 * the tokenizer's pre-split keeps ` word` pieces apart, so N words are N tokens (a test proves it).
 */
export const WORDS: readonly string[] = [
  'the',
  'quick',
  'brown',
  'fox',
  'over',
  'lazy',
  'dog',
  'and',
  'a',
  'cat',
  'runs',
  'in',
  'green',
  'field',
  'with',
  'small',
  'red',
  'ball',
  'under',
  'blue',
  'sky',
  'on',
  'warm',
  'day',
  'while',
  'birds',
  'sing',
  'near',
  'old',
  'tree',
  'by',
  'river',
];

/** `count` one-token pieces: the first bare, the rest with a leading space. */
export function outputWords(count: number, offset = 0): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) {
    const word = WORDS[(offset + i) % WORDS.length]!;
    pieces.push(i === 0 ? word : ' ' + word);
  }
  return pieces;
}

export function countText(text: string): number {
  return text === '' ? 0 : countTokens(text);
}

/*
 * Input-token truth, the simulator's equivalent of a provider's own count. It follows OpenAI's
 * cookbook rule for gpt-4o-style models ("How to count tokens with tiktoken",
 * https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken) on o200k_base:
 *   - 3 tokens per message, plus the tokens of each of its string fields (except `type`),
 *     plus 1 when it has a `name`;
 *   - a non-string `content` contributes its parts' `text`, a tool_use `input` as JSON and a
 *     tool_result's nested content; images, files and other parts contribute nothing;
 *   - `tool_calls` contribute each function's name and arguments;
 *   - 3 tokens priming the reply;
 *   - tools add the tokens of `JSON.stringify(tools)`.
 * Anthropic's `system` and the Responses API's `instructions` count as a message with role
 * "system"; a Responses `input` string counts as one user message. Gemini's `systemInstruction`
 * and `contents` and Ollama's `system` and `prompt` follow the same rule (see below).
 */
const PER_MESSAGE = 3;
const PER_NAME = 1;
const REPLY_PRIMING = 3;

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function countContent(content: unknown): number {
  if (typeof content === 'string') return countText(content);
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const part of content) {
    if (typeof part === 'string') total += countText(part);
    else if (isObject(part)) {
      if (typeof part.text === 'string') total += countText(part.text);
      if (part.input !== undefined) total += countText(JSON.stringify(part.input));
      if (part.content !== undefined) total += countContent(part.content);
    }
  }
  return total;
}

function countToolCalls(calls: unknown): number {
  if (!Array.isArray(calls)) return 0;
  let total = 0;
  for (const call of calls) {
    const fn = isObject(call) && isObject(call.function) ? call.function : undefined;
    if (typeof fn?.name === 'string') total += countText(fn.name);
    if (typeof fn?.arguments === 'string') total += countText(fn.arguments);
  }
  return total;
}

function countMessage(message: unknown): number {
  if (!isObject(message)) return PER_MESSAGE;
  let total = PER_MESSAGE;
  for (const [key, value] of Object.entries(message)) {
    if (key === 'type') continue;
    if (typeof value === 'string') {
      total += countText(value);
      if (key === 'name') total += PER_NAME;
    } else if (key === 'content') total += countContent(value);
    else if (key === 'tool_calls') total += countToolCalls(value);
  }
  return total;
}

function countTools(tools: unknown): number {
  return Array.isArray(tools) && tools.length > 0 ? countText(JSON.stringify(tools)) : 0;
}

export function countMessages(messages: unknown, tools?: unknown): number {
  const list = Array.isArray(messages) ? messages : [];
  return list.reduce((sum: number, m) => sum + countMessage(m), REPLY_PRIMING) + countTools(tools);
}

export function countChatInput(body: Json): number {
  return countMessages(body.messages, body.tools);
}

export function countAnthropicInput(body: Json): number {
  const messages = Array.isArray(body.messages) ? [...body.messages] : [];
  if (body.system !== undefined) messages.unshift({ role: 'system', content: body.system });
  return countMessages(messages, body.tools);
}

export function countResponsesInput(body: Json): number {
  const messages: unknown[] = [];
  if (typeof body.instructions === 'string') messages.push({ role: 'system', content: body.instructions });
  if (typeof body.input === 'string') messages.push({ role: 'user', content: body.input });
  else if (Array.isArray(body.input)) messages.push(...body.input);
  return countMessages(messages, body.tools);
}

/** Embeddings and legacy completions: the plain tokens of each input, summed (token arrays count as given). */
export function countPlainInputs(input: unknown): number {
  if (typeof input === 'string') return countText(input);
  if (!Array.isArray(input)) return 0;
  if (input.every((x) => typeof x === 'number')) return input.length;
  return input.reduce((sum: number, item) => sum + countPlainInputs(item), 0);
}

/** A Gemini `Content` as message content: text parts, and function calls and responses as their JSON. */
function geminiParts(content: unknown): unknown {
  if (typeof content === 'string') return content;
  const parts = isObject(content) ? content.parts : undefined;
  if (!Array.isArray(parts)) return [];
  return parts.map((part) => {
    if (!isObject(part)) return {};
    if (typeof part.text === 'string') return { text: part.text };
    const call = isObject(part.functionCall) ? part.functionCall : null;
    if (call) return { text: typeof call.name === 'string' ? call.name : '', input: call.args ?? {} };
    const reply = isObject(part.functionResponse) ? part.functionResponse : null;
    if (reply) return { text: typeof reply.name === 'string' ? reply.name : '', input: reply.response ?? {} };
    return {};
  });
}

/**
 * Gemini `generateContent` and `countTokens` bodies, by the same rule: `systemInstruction` is a
 * system message, each of `contents` a message with its role, `tools` their JSON. A
 * `countTokens` body may wrap the request in `generateContentRequest`.
 */
export function countGeminiInput(body: Json): number {
  const request = isObject(body.generateContentRequest) ? body.generateContentRequest : body;
  const messages: unknown[] = [];
  if (request.systemInstruction !== undefined) {
    messages.push({ role: 'system', content: geminiParts(request.systemInstruction) });
  }
  const contents = Array.isArray(request.contents) ? request.contents : [request.contents];
  for (const content of contents) {
    if (content === undefined) continue;
    const role = isObject(content) && typeof content.role === 'string' ? content.role : 'user';
    messages.push({ role, content: geminiParts(content) });
  }
  return countMessages(messages, request.tools);
}

/** Gemini `embedContent` (`content`) and `batchEmbedContents` (`requests[].content`): the text of each part. */
export function countGeminiEmbedInput(body: Json): number {
  const contents = Array.isArray(body.requests)
    ? body.requests.map((r) => (isObject(r) ? r.content : undefined))
    : [body.content];
  let total = 0;
  for (const content of contents) {
    const parts = isObject(content) && Array.isArray(content.parts) ? content.parts : [];
    for (const part of parts)
      if (isObject(part) && typeof part.text === 'string') total += countText(part.text);
  }
  return total;
}

/**
 * Ollama `/api/generate`: `system` as a system message and `prompt` (with a fill-in-the-middle
 * `suffix`) as a user message; no prompt (a model-load request), no tokens.
 */
export function countOllamaGenerateInput(body: Json): number {
  if (typeof body.prompt !== 'string') return 0;
  const messages: unknown[] = [];
  if (typeof body.system === 'string') messages.push({ role: 'system', content: body.system });
  messages.push({ role: 'user', content: body.prompt });
  return countMessages(messages) + (typeof body.suffix === 'string' ? countText(body.suffix) : 0);
}
