import type { CallFacts } from './call.js';

/**
 * The two request facts the guards need that RequestInfo does not carry: where a default max
 * output tokens goes, and how many tool rounds a conversation holds. Both are wire-format
 * knowledge, kept in this one file until the adapters offer them (`capMaxTokens`,
 * `countToolRounds` on ProviderAdapter).
 */

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Providers that take `max_completion_tokens` on Chat Completions (o-series models refuse `max_tokens`). */
const COMPLETION_TOKENS_PROVIDERS = new Set(['openai', 'azure.ai.openai']);

/**
 * The body with `limit` as its max output tokens, or null when it sets one already (or is not
 * a call that generates). The field per wire format:
 * Chat Completions `max_completion_tokens` (api.openai.com, Azure) or `max_tokens` (compatible
 * servers), Responses `max_output_tokens`, Completions and Anthropic `max_tokens`, Gemini
 * `generationConfig.maxOutputTokens`, Ollama `options.num_predict`.
 */
export function withDefaultMaxTokens(facts: CallFacts, limit: number): Json | null {
  const body = facts.body;
  if (!body || facts.detection.operation === 'embeddings' || facts.detection.operation === 'count_tokens') {
    return null;
  }
  if (facts.info?.maxTokens !== null && facts.info?.maxTokens !== undefined) return null;
  if (facts.adapter.id === 'ollama') {
    const options = isObject(body.options) ? body.options : {};
    if (options.num_predict !== undefined) return null;
    return { ...body, options: { ...options, num_predict: limit } };
  }
  switch (facts.shape) {
    case 'openai-chat':
      return COMPLETION_TOKENS_PROVIDERS.has(facts.provider)
        ? { ...body, max_completion_tokens: limit }
        : { ...body, max_tokens: limit };
    case 'openai-responses':
      return { ...body, max_output_tokens: limit };
    case 'openai-completions':
    case 'anthropic-messages':
      return { ...body, max_tokens: limit };
    case 'gemini-generate': {
      const config = isObject(body.generationConfig) ? body.generationConfig : {};
      if (config.maxOutputTokens !== undefined) return null;
      return { ...body, generationConfig: { ...config, maxOutputTokens: limit } };
    }
    default:
      return null;
  }
}

/**
 * Tool-call rounds already in a conversation: assistant turns that called tools (Chat
 * Completions `tool_calls` / `function_call`, Anthropic `tool_use` blocks, Gemini `functionCall`
 * parts, Ollama `tool_calls`), and in a Responses `input` each run of adjacent `function_call` items.
 */
export function countToolRounds(body: Json | null): number {
  if (!body) return 0;
  let rounds = 0;
  for (const m of list(body.messages)) {
    if (!isObject(m) || m.role !== 'assistant') continue;
    const calls =
      list(m.tool_calls).length > 0 ||
      isObject(m.function_call) ||
      list(m.content).some((b) => isObject(b) && b.type === 'tool_use');
    if (calls) rounds++;
  }
  for (const c of list(body.contents)) {
    if (!isObject(c) || c.role !== 'model') continue;
    if (list(c.parts).some((p) => isObject(p) && (isObject(p.functionCall) || isObject(p.function_call))))
      rounds++;
  }
  // Parallel calls of one round are adjacent `function_call` items; their outputs follow.
  let previous: unknown = null;
  for (const item of list(body.input)) {
    const type = isObject(item) ? item.type : null;
    if (type === 'function_call' && previous !== 'function_call') rounds++;
    previous = type;
  }
  return rounds;
}
