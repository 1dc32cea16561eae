import { randomBytes } from 'node:crypto';
import { outputWords } from './text.js';
import type { Behavior } from './types.js';

/** One output token as sent: a word of text or a fragment of a tool call's arguments JSON. */
export interface Piece {
  text: string;
  /** Index into the choice's blocks. */
  block: number;
  first: boolean;
  last: boolean;
}

export type Block =
  | { kind: 'text'; text: string }
  | { kind: 'tool'; id: string; name: string; args: string; input: Record<string, unknown> };

export interface Choice {
  blocks: Block[];
  pieces: Piece[];
}

/** OpenAI's names; other formats map them. `content_filter` comes only from the fault. */
export type Finish = 'stop' | 'length' | 'tool_calls' | 'content_filter';

/** Everything one answer contains and how long each phase takes, decided before anything is sent. */
export interface Plan {
  id: string;
  created: number;
  model: string;
  /** Counted input, cache reads and writes included. */
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  choices: Choice[];
  finish: Finish;
  queueMs: number;
  prefillMs: number;
  reasoningMs: number;
  generationMs: number;
  msPerToken: number;
}

interface PlanInput {
  behavior: Behavior;
  model: string;
  inputTokens: number;
  maxTokens: number | undefined;
  choices: number;
  toolNames: string[];
  /** Only Anthropic reports cache writes. */
  cacheWrites: boolean;
  idPrefix: string;
}

export function newId(prefix: string, bytes = 12): string {
  return prefix + randomBytes(bytes).toString('hex');
}

/** Visible output tokens of every choice together, reasoning excluded. */
export const visibleTokens = (plan: Plan): number =>
  plan.choices.reduce((sum, choice) => sum + choice.pieces.length, 0);

export const totalOutputTokens = (plan: Plan): number => visibleTokens(plan) + plan.reasoningTokens;

export const stepCount = (plan: Plan): number => plan.choices[0]?.pieces.length ?? 0;

function textChoice(words: number, offset: number): Choice {
  const pieces = outputWords(words, offset).map((text, i) => ({
    text,
    block: 0,
    first: i === 0,
    last: i === words - 1,
  }));
  const blocks: Block[] = words > 0 ? [{ kind: 'text', text: pieces.map((p) => p.text).join('') }] : [];
  return { blocks, pieces };
}

/** Arguments `{"query":"w1 w2 …"}`, sent as one fragment per word so each fragment is one output token. */
function toolChoice(words: number, calls: number, toolNames: string[], offset: number): Choice {
  const blocks: Block[] = [];
  const pieces: Piece[] = [];
  let used = 0;
  for (let c = 0; c < calls; c++) {
    const size = Math.floor(words / calls) + (c < words % calls ? 1 : 0);
    const fragments = outputWords(size, offset + used);
    used += size;
    const query = fragments.join('');
    const args = JSON.stringify({ query });
    fragments.forEach((word, i) => {
      const text = (i === 0 ? '{"query":"' : '') + word + (i === size - 1 ? '"}' : '');
      pieces.push({ text, block: c, first: i === 0, last: i === size - 1 });
    });
    blocks.push({
      kind: 'tool',
      id: newId('call_', 12),
      name: toolNames.length > 0 ? toolNames[c % toolNames.length]! : 'lookup',
      args,
      input: { query },
    });
  }
  return { blocks, pieces };
}

export function makePlan(input: PlanInput): Plan {
  const b = input.behavior;
  const cap = input.maxTokens ?? Number.POSITIVE_INFINITY;
  const words = Math.min(b.outputTokens, cap);
  const calls = Math.min(b.toolCalls, words);
  const choices = Array.from({ length: Math.max(1, input.choices) }, (_, i) =>
    calls > 0 ? toolChoice(words, calls, input.toolNames, i * 7) : textChoice(words, i * 7),
  );
  const cacheReadTokens = Math.min(b.cacheReadTokens, input.inputTokens);
  const cacheWriteTokens = input.cacheWrites
    ? Math.min(b.cacheWriteTokens, input.inputTokens - cacheReadTokens)
    : 0;
  const steps = choices[0]!.pieces.length;
  return {
    id: newId(input.idPrefix),
    created: Math.floor(Date.now() / 1000),
    model: input.model,
    inputTokens: input.inputTokens,
    cacheReadTokens,
    cacheWriteTokens,
    reasoningTokens: b.reasoningTokens,
    choices,
    finish: b.outputTokens > cap ? 'length' : calls > 0 ? 'tool_calls' : 'stop',
    queueMs: b.queueMs,
    prefillMs: b.prefillMsPerToken * input.inputTokens,
    reasoningMs: b.reasoningTokens * b.msPerToken,
    generationMs: Math.max(steps - 1, 0) * b.msPerToken,
    msPerToken: b.msPerToken,
  };
}

/** The plan cut to its first `steps` tokens per choice and stopped by a content filter. */
export function filterPlan(plan: Plan, steps: number): Plan {
  const choices = plan.choices.map((choice) => {
    const pieces = choice.pieces.slice(0, steps);
    const blocks = choice.blocks
      .slice(0, pieces.length > 0 ? pieces.at(-1)!.block + 1 : 0)
      .map((block, i) => {
        const sent = pieces
          .filter((p) => p.block === i)
          .map((p) => p.text)
          .join('');
        return block.kind === 'text' ? { ...block, text: sent } : { ...block, args: sent };
      });
    return { blocks, pieces };
  });
  const kept = choices[0]?.pieces.length ?? 0;
  return {
    ...plan,
    choices,
    finish: 'content_filter',
    generationMs: Math.max(kept - 1, 0) * plan.msPerToken,
  };
}

/** A plan that generates nothing (embeddings, token counts): only its input is counted. */
export function inputOnlyPlan(
  input: { behavior: Behavior; model: string },
  inputTokens: number,
  idPrefix = '',
): Plan {
  return makePlan({
    behavior: { ...input.behavior, outputTokens: 0, reasoningTokens: 0, toolCalls: 0, cacheReadTokens: 0 },
    model: input.model,
    inputTokens,
    maxTokens: undefined,
    choices: 1,
    toolNames: [],
    cacheWrites: false,
    idPrefix,
  });
}
