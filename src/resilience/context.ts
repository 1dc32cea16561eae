import { ContextWindowExceededError, InvalidOptionError } from '../errors/errors.js';
import { nonNegativeInt, oneOf, positiveInt, REQUIRED } from '../options.js';
import { contextWindow as knownContextWindow } from '../pricing/index.js';
import { estimateChatInput } from '../tokens/index.js';
import type { ChatMessage, FitOptions, FitResult, FitStrategy } from './types.js';

const STRATEGIES: readonly FitStrategy[] = [
  'drop-oldest',
  'sliding-window',
  'keep-system-first-recent',
  'summarize-older',
];

/**
 * Messages that must stay together: an assistant turn that calls tools and the results that
 * answer it. Sending a tool result without its call (or a call without its results) is an error
 * at every provider, so a fitting strategy keeps or drops such a group whole.
 */
interface Group<M> {
  messages: M[];
  tokens: number;
  pinned: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function blocks(message: ChatMessage, type: string): boolean {
  return Array.isArray(message.content) && message.content.some((b) => isObject(b) && b.type === type);
}

/** OpenAI: `tool_calls` (or the legacy `function_call`); Anthropic: `tool_use` blocks. */
function callsTools(message: ChatMessage): boolean {
  if (message.role !== 'assistant') return false;
  return (
    (Array.isArray(message.tool_calls) && message.tool_calls.length > 0) ||
    isObject(message.function_call) ||
    blocks(message, 'tool_use')
  );
}

/** OpenAI: a `tool` (or legacy `function`) message; Anthropic: a user turn of `tool_result` blocks. */
function answersTools(message: ChatMessage): boolean {
  return (
    message.role === 'tool' ||
    message.role === 'function' ||
    (message.role === 'user' && blocks(message, 'tool_result'))
  );
}

function isSystem(message: ChatMessage): boolean {
  return message.role === 'system' || message.role === 'developer';
}

function group<M extends ChatMessage>(messages: readonly M[]): M[][] {
  const out: M[][] = [];
  for (const message of messages) {
    const last = out[out.length - 1];
    const head = last?.[0];
    if (last && head && callsTools(head) && answersTools(message)) last.push(message);
    else out.push([message]);
  }
  return out;
}

/**
 * Fit a conversation into the model's context window, leaving `maxOutputTokens` for the reply
 * (input and output share the window; a request over it is refused), with one of four strategies:
 *
 * - `drop-oldest`: drop the oldest turns until it fits; system messages stay.
 * - `sliding-window`: the last `windowSize` messages (and fewer if they do not fit); nothing pinned.
 * - `keep-system-first-recent`: system messages, the first user turn, and as many recent turns as fit.
 * - `summarize-older`: system messages, as many recent turns as fit beside a summary, and the
 *   summary of the rest from `summarize` (an LLM call of its own; meter it).
 *
 * Counts are the tokenizer's (`estimateChatInput`: exact for OpenAI models, per OpenAI's
 * counting rule), computed once per message: a body's count is the sum of its messages' counts
 * plus a fixed part (reply priming, tools, Anthropic's `system`). The newest turn is always kept;
 * when even it cannot fit, a ContextWindowExceededError says by how much.
 */
export async function fitToContext<M extends ChatMessage>(
  messages: readonly M[],
  options: FitOptions<M>,
): Promise<FitResult<M>> {
  const { model, strategy } = options;
  const shape = options.shape ?? 'openai-chat';
  if (typeof model !== 'string' || model.length === 0) {
    throw new InvalidOptionError('Expected `model` to be a model name.');
  }
  nonNegativeInt('maxOutputTokens', options.maxOutputTokens, REQUIRED);
  oneOf('strategy', strategy, STRATEGIES, REQUIRED);
  if (strategy === 'summarize-older' && typeof options.summarize !== 'function') {
    throw new InvalidOptionError('Expected `summarize` to be a function for the "summarize-older" strategy.');
  }
  const window =
    options.contextWindow ??
    knownContextWindow(shape === 'anthropic-messages' ? 'anthropic' : 'openai', model) ??
    knownContextWindow(null, model);
  if (window === null || !Number.isInteger(window) || window <= 0) {
    throw new InvalidOptionError(
      `Expected \`contextWindow\`: the context window of \`${model}\` is not known.`,
    );
  }
  const budget = window - options.maxOutputTokens;

  const rest = (list: readonly unknown[]): Record<string, unknown> => {
    const body: Record<string, unknown> = { messages: list };
    if (options.tools && options.tools.length > 0) body.tools = options.tools;
    if (options.system !== undefined) body.system = options.system;
    return body;
  };
  const count = async (list: readonly unknown[]) => estimateChatInput(rest(list), model, shape);
  const fixed = (await count([])).tokens;
  const empty = (await estimateChatInput({ messages: [] }, model, shape)).tokens;
  const perMessage = async (message: M) =>
    (await estimateChatInput({ messages: [message] }, model, shape)).tokens - empty;

  const groups: Group<M>[] = [];
  for (const g of group(messages)) {
    let tokens = 0;
    for (const m of g) tokens += await perMessage(m);
    groups.push({ messages: g, tokens, pinned: g.length === 1 && isSystem(g[0]!) });
  }
  const sum = (gs: readonly Group<M>[]) => gs.reduce((n, g) => n + g.tokens, fixed);

  const finish = async (
    kept: readonly Group<M>[],
    summary: string | null,
    extra: M | null,
  ): Promise<FitResult<M>> => {
    const keptSet = new Set(kept);
    const out: M[] = [];
    let inserted = extra === null;
    for (const g of groups) {
      if (!inserted && !g.pinned) {
        out.push(extra!);
        inserted = true;
      }
      if (keptSet.has(g)) out.push(...g.messages);
    }
    if (!inserted) out.push(extra!);
    const dropped = groups.filter((g) => !keptSet.has(g)).flatMap((g) => g.messages);
    const final = await count(out);
    if (final.tokens > budget) overflow(final.tokens);
    return { messages: out, inputTokens: final.tokens, budget, dropped, summary, exact: final.exact };
  };
  const overflow = (needed: number): never => {
    throw new ContextWindowExceededError(model, needed, options.maxOutputTokens, window);
  };

  const newest = groups[groups.length - 1];
  if (!newest) return finish([], null, null);

  /** Most recent groups from `candidates` that fit in `room`, newest always, oldest dropped first. */
  const recent = (candidates: readonly Group<M>[], room: number): Group<M>[] => {
    const kept: Group<M>[] = [];
    let used = 0;
    for (let i = candidates.length - 1; i >= 0; i--) {
      const g = candidates[i]!;
      if (used + g.tokens > room) break;
      kept.unshift(g);
      used += g.tokens;
    }
    return kept;
  };

  const pinned = groups.filter((g) => g.pinned);
  const movable = groups.filter((g) => !g.pinned);

  switch (strategy) {
    case 'drop-oldest': {
      if (sum(groups) <= budget) return finish(groups, null, null);
      const room = budget - sum(pinned);
      const kept = recent(movable, room);
      if (!kept.includes(newest)) overflow(sum(pinned) + newest.tokens);
      return finish([...pinned, ...kept], null, null);
    }
    case 'sliding-window': {
      const size = positiveInt('windowSize', options.windowSize, Number.POSITIVE_INFINITY);
      const windowed: Group<M>[] = [];
      let n = 0;
      for (let i = groups.length - 1; i >= 0; i--) {
        const g = groups[i]!;
        if (windowed.length > 0 && n + g.messages.length > size) break;
        windowed.unshift(g);
        n += g.messages.length;
      }
      const kept = recent(windowed, budget - fixed);
      if (!kept.includes(newest)) overflow(fixed + newest.tokens);
      return finish(kept, null, null);
    }
    case 'keep-system-first-recent': {
      if (sum(groups) <= budget) return finish(groups, null, null);
      const first = movable.find((g) => g.messages[0]!.role === 'user' && !answersTools(g.messages[0]!));
      const head = first && first !== newest ? [first] : [];
      const base = sum([...pinned, ...head]);
      const kept = recent(
        movable.filter((g) => g !== first || head.length === 0),
        budget - base,
      );
      if (!kept.includes(newest)) overflow(base + newest.tokens);
      return finish([...pinned, ...head, ...kept], null, null);
    }
    case 'summarize-older': {
      if (sum(groups) <= budget) return finish(groups, null, null);
      const room = budget - sum(pinned);
      const reserve = Math.max(
        0,
        Math.min(options.summaryMaxTokens ?? Math.min(1024, Math.floor(room / 4)), room),
      );
      let kept = recent(movable, room - reserve);
      if (!kept.includes(newest)) kept = recent(movable, room);
      if (!kept.includes(newest)) overflow(sum(pinned) + newest.tokens);
      const older = movable.filter((g) => !kept.includes(g)).flatMap((g) => g.messages);
      const summary = await options.summarize!(older, { maxTokens: reserve, model });
      const message =
        options.summaryMessage?.(summary) ??
        ({
          role: shape === 'anthropic-messages' ? 'user' : 'assistant',
          content: `[Previous conversation summary: ${summary}]`,
        } as unknown as M);
      const summaryTokens = await perMessage(message);
      // A summary longer than asked for pushes out the oldest recent turns, never the newest.
      while (sum([...pinned, ...kept]) + summaryTokens > budget && kept.length > 1) kept = kept.slice(1);
      if (sum([...pinned, ...kept]) + summaryTokens > budget)
        overflow(sum([...pinned, ...kept]) + summaryTokens);
      return finish([...pinned, ...kept], summary, message);
    }
  }
}
