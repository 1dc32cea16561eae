/**
 * Pre-flight input-token estimates for request bodies, before the provider reports usage.
 *
 * Messages follow OpenAI's documented rule for gpt-3.5-turbo-0613 and later, gpt-4 and gpt-4o
 * (cookbook "How to count tokens with tiktoken",
 * https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken): 3 tokens per message
 * (`<|start|>{role}<|message|>…<|end|>`), the tokens of its role, content and name, 1 more when a
 * name is given, and 3 to prime the reply. What the cookbook does not document is approximated,
 * each in one place below: tool definitions count as the tokens of `JSON.stringify(tools)` (how
 * the API renders them for the model is not documented), tool calls as their name plus arguments,
 * images as a flat figure, other media not at all. Anthropic bodies get the same treatment,
 * tokenized with o200k_base: Claude's tokenizer is not published, so they are never exact.
 */

import { drainAsync, newTally, type TokenEstimate, tallyResult, tallyText } from './count.js';
import { encodingForModel, loadEncoding } from './encoding.js';

export type BodyShape =
  | 'openai-chat'
  | 'openai-responses'
  | 'openai-completions'
  | 'openai-embeddings'
  | 'anthropic-messages'
  | 'gemini-generate'
  | 'gemini-embed'
  | 'ollama-generate';

export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING_TOKENS = 3;
/**
 * An image in an OpenAI request: 85 tokens is the base charge of every image (the whole charge at
 * `detail: "low"`); high detail adds 170 per 512-pixel tile, which needs the image's size. So this
 * is a lower bound. https://platform.openai.com/docs/guides/images-vision#calculating-costs
 */
export const OPENAI_IMAGE_TOKENS = 85;
/**
 * An image in an Anthropic request: about width × height / 750 tokens, and images are scaled
 * down to about 1.15 megapixels, so ~1,600 at most. Without the image's size, the maximum.
 * https://docs.anthropic.com/en/docs/build-with-claude/vision#calculate-image-costs
 */
export const ANTHROPIC_IMAGE_TOKENS = 1_600;
/**
 * An image in a Gemini request: 258 tokens when both sides are at most 384 pixels, more (258 per
 * 768-pixel tile) for larger ones, which needs the image's size. A lower bound, like OpenAI's.
 * https://ai.google.dev/gemini-api/docs/tokens#multimodal-tokens
 */
export const GEMINI_IMAGE_TOKENS = 258;

/** What a body costs: texts to tokenize plus tokens known without tokenizing. */
interface Parts {
  texts: string[];
  fixed: number;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function addText(parts: Parts, value: unknown): void {
  if (typeof value === 'string' && value.length > 0) parts.texts.push(value);
}

function addJson(parts: Parts, value: unknown): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value) && value.length === 0) return;
  try {
    addText(parts, JSON.stringify(value));
  } catch {
    // Not JSON-serializable (a cycle, a BigInt): it could not have been sent as JSON either.
  }
}

/** A `prompt` or embeddings `input`: strings, or token-id arrays that count their length. */
function addPromptLike(parts: Parts, value: unknown): void {
  if (typeof value === 'string') {
    addText(parts, value);
    return;
  }
  for (const item of list(value)) {
    if (typeof item === 'string') addText(parts, item);
    else if (typeof item === 'number') parts.fixed += 1;
    else if (Array.isArray(item)) parts.fixed += item.length;
  }
}

function addOpenAIContent(parts: Parts, content: unknown): void {
  if (typeof content === 'string') {
    addText(parts, content);
    return;
  }
  for (const part of list(content)) {
    if (!isObject(part)) continue;
    switch (part.type) {
      case 'text':
      case 'input_text':
      case 'output_text':
        addText(parts, part.text);
        break;
      case 'refusal':
        addText(parts, part.refusal);
        break;
      case 'image_url':
      case 'input_image':
        parts.fixed += OPENAI_IMAGE_TOKENS;
        break;
      // input_audio, file, input_file: priced by duration or pages, not estimated here.
    }
  }
}

function addFunctionCall(parts: Parts, call: unknown): void {
  if (!isObject(call)) return;
  addText(parts, call.name);
  addText(parts, call.arguments);
}

function openAIChat(body: Json, parts: Parts): void {
  for (const message of list(body.messages)) {
    if (!isObject(message)) continue;
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, message.role);
    addOpenAIContent(parts, message.content);
    if (typeof message.name === 'string') {
      addText(parts, message.name);
      parts.fixed += TOKENS_PER_NAME;
    }
    for (const call of list(message.tool_calls)) {
      if (isObject(call)) addFunctionCall(parts, call.function);
    }
    addFunctionCall(parts, message.function_call);
  }
  parts.fixed += REPLY_PRIMING_TOKENS;
  addJson(parts, body.tools);
  addJson(parts, body.functions);
}

function openAIResponses(body: Json, parts: Parts): void {
  if (typeof body.instructions === 'string') {
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, 'system');
    addText(parts, body.instructions);
  }
  if (typeof body.input === 'string') {
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, 'user');
    addText(parts, body.input);
  }
  for (const item of list(body.input)) {
    if (!isObject(item)) continue;
    const type = item.type ?? 'message';
    if (type === 'message') {
      parts.fixed += TOKENS_PER_MESSAGE;
      addText(parts, item.role);
      addOpenAIContent(parts, item.content);
    } else if (type === 'function_call') {
      parts.fixed += TOKENS_PER_MESSAGE;
      addFunctionCall(parts, item);
    } else if (type === 'function_call_output') {
      parts.fixed += TOKENS_PER_MESSAGE;
      addOpenAIContent(parts, item.output);
    }
    // reasoning items carry encrypted content that cannot be counted; built-in tool calls
    // (web search, file search) are billed by the tool.
  }
  parts.fixed += REPLY_PRIMING_TOKENS;
  addJson(parts, body.tools);
}

function addAnthropicContent(parts: Parts, content: unknown): void {
  if (typeof content === 'string') {
    addText(parts, content);
    return;
  }
  for (const block of list(content)) {
    if (!isObject(block)) continue;
    switch (block.type) {
      case 'text':
        addText(parts, block.text);
        break;
      case 'image':
        parts.fixed += ANTHROPIC_IMAGE_TOKENS;
        break;
      case 'tool_use':
        addText(parts, block.name);
        addJson(parts, block.input);
        break;
      case 'tool_result':
        addAnthropicContent(parts, block.content);
        break;
      case 'document':
        if (isObject(block.source) && block.source.type === 'text') addText(parts, block.source.data);
        break;
      // thinking blocks of earlier turns are dropped from the context by the API.
    }
  }
}

function anthropicMessages(body: Json, parts: Parts): void {
  if (body.system !== undefined && body.system !== null) {
    parts.fixed += TOKENS_PER_MESSAGE;
    addAnthropicContent(parts, body.system);
  }
  for (const message of list(body.messages)) {
    if (!isObject(message)) continue;
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, message.role);
    addAnthropicContent(parts, message.content);
  }
  parts.fixed += REPLY_PRIMING_TOKENS;
  addJson(parts, body.tools);
}

/**
 * A Gemini `Content` (or a bare string): text parts, function calls and responses as name plus
 * JSON, images at their flat figure. Protobuf JSON accepts snake_case names too (Vertex AI).
 */
function addGeminiContent(parts: Parts, content: unknown): void {
  if (typeof content === 'string') {
    addText(parts, content);
    return;
  }
  if (!isObject(content)) return;
  for (const part of list(content.parts)) {
    if (!isObject(part)) continue;
    addText(parts, part.text);
    const call = part.functionCall ?? part.function_call;
    if (isObject(call)) {
      addText(parts, call.name);
      addJson(parts, call.args);
    }
    const reply = part.functionResponse ?? part.function_response;
    if (isObject(reply)) {
      addText(parts, reply.name);
      addJson(parts, reply.response);
    }
    const media = part.inlineData ?? part.inline_data ?? part.fileData ?? part.file_data;
    const mime = isObject(media) ? (media.mimeType ?? media.mime_type) : undefined;
    if (typeof mime === 'string' && mime.startsWith('image/')) parts.fixed += GEMINI_IMAGE_TOKENS;
  }
}

/** Gemini `generateContent` and `countTokens` (which may wrap it in `generateContentRequest`). */
function geminiGenerate(body: Json, parts: Parts): void {
  const wrapped = body.generateContentRequest ?? body.generate_content_request;
  const request = isObject(wrapped) ? wrapped : body;
  const system = request.systemInstruction ?? request.system_instruction;
  if (system !== undefined && system !== null) {
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, 'system');
    addGeminiContent(parts, system);
  }
  const contents = Array.isArray(request.contents) ? request.contents : [request.contents];
  for (const content of contents) {
    if (content === undefined || content === null) continue;
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, isObject(content) && typeof content.role === 'string' ? content.role : 'user');
    addGeminiContent(parts, content);
  }
  parts.fixed += REPLY_PRIMING_TOKENS;
  addJson(parts, request.tools);
}

/** Gemini `embedContent` (`content`) and `batchEmbedContents` (`requests[].content`): the text alone. */
function geminiEmbed(body: Json, parts: Parts): void {
  const requests = Array.isArray(body.requests) ? body.requests : [body];
  for (const request of requests) if (isObject(request)) addGeminiContent(parts, request.content);
}

/** Ollama `/api/generate`: `system` and `prompt` (plus a fill-in-the-middle `suffix`) as two messages. */
function ollamaGenerate(body: Json, parts: Parts): void {
  if (typeof body.prompt !== 'string') return;
  if (typeof body.system === 'string') {
    parts.fixed += TOKENS_PER_MESSAGE;
    addText(parts, 'system');
    addText(parts, body.system);
  }
  parts.fixed += TOKENS_PER_MESSAGE;
  addText(parts, 'user');
  addText(parts, body.prompt);
  addText(parts, body.suffix);
  parts.fixed += REPLY_PRIMING_TOKENS;
}

function collect(body: unknown, shape: BodyShape): Parts {
  const parts: Parts = { texts: [], fixed: 0 };
  if (!isObject(body)) return parts;
  switch (shape) {
    case 'openai-chat':
      openAIChat(body, parts);
      break;
    case 'openai-responses':
      openAIResponses(body, parts);
      break;
    case 'openai-completions':
      addPromptLike(parts, body.prompt);
      addText(parts, body.suffix);
      break;
    case 'openai-embeddings':
      addPromptLike(parts, body.input);
      break;
    case 'anthropic-messages':
      anthropicMessages(body, parts);
      break;
    case 'gemini-generate':
      geminiGenerate(body, parts);
      break;
    case 'gemini-embed':
      geminiEmbed(body, parts);
      break;
    case 'ollama-generate':
      ollamaGenerate(body, parts);
      break;
  }
  return parts;
}

/**
 * Estimated input tokens of a request body. Anything not recognised in the body is ignored;
 * a body that is not an object counts 0. The character cap of `countTokens` applies to the body
 * as a whole, and the event loop gets a turn every ~64 KiB.
 */
export async function estimateChatInput(
  body: unknown,
  model: string | null,
  shape: BodyShape = 'openai-chat',
): Promise<TokenEstimate> {
  const choice = encodingForModel(model);
  const exact = choice.exact && shape !== 'anthropic-messages';
  const parts = collect(body, shape);
  if (parts.texts.length === 0) return { tokens: parts.fixed, exact, truncated: false };
  const encoder = await loadEncoding(choice.encoding);
  const tally = newTally();
  for (const text of parts.texts) await drainAsync(tallyText(text, encoder, tally));
  const counted = tallyResult(tally);
  return { tokens: counted.tokens + parts.fixed, exact, truncated: counted.truncated };
}
