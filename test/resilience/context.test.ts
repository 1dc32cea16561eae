import { describe, expect, it } from 'vitest';
import { ContextWindowExceededError } from '../../src/index.js';
import { type ChatMessage, fitToContext } from '../../src/resilience/index.js';
import { estimateChatInput } from '../../src/tokens/index.js';

/**
 * fitToContext against the real tokenizer: every expected result is computed here by brute
 * force over whole request bodies (never from the per-message sums fitToContext uses), and every
 * result is checked to be counted exactly, within budget, and never to split a tool call from
 * its results.
 */

const MODEL = 'gpt-4o-mini';
const filler = (topic: string, n: number) =>
  Array.from(
    { length: n },
    (_, i) => `${topic} detail ${i}: the quick brown fox jumps over the lazy dog.`,
  ).join(' ');

const SYSTEM: ChatMessage = { role: 'system', content: 'You are a concise travel assistant.' };
const FIRST: ChatMessage = {
  role: 'user',
  content: `My name is Ada and I plan a trip to Lisbon. ${filler('intro', 6)}`,
};
const CONVERSATION: ChatMessage[] = [
  SYSTEM,
  FIRST,
  { role: 'assistant', content: filler('plan', 8) },
  { role: 'user', content: filler('budget', 8) },
  {
    role: 'assistant',
    content: null,
    tool_calls: [
      { id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Lisbon"}' } },
      {
        id: 'call_h',
        type: 'function',
        function: { name: 'find_hotels', arguments: '{"city":"Lisbon","max":3}' },
      },
    ],
  },
  { role: 'tool', tool_call_id: 'call_w', content: filler('weather', 6) },
  { role: 'tool', tool_call_id: 'call_h', content: filler('hotels', 10) },
  { role: 'assistant', content: filler('summary', 6) },
  { role: 'user', content: 'Which hotel is closest to the river?' },
];

const count = async (messages: readonly unknown[]) => (await estimateChatInput({ messages }, MODEL)).tokens;

/** Tool calls and their results travel together. */
function expectToolPairsWhole(messages: readonly ChatMessage[]) {
  const calls = new Set(
    messages.flatMap((m) => ((m.tool_calls as { id: string }[] | undefined) ?? []).map((c) => c.id)),
  );
  const results = new Set(messages.filter((m) => m.role === 'tool').map((m) => m.tool_call_id as string));
  expect(
    [...results].filter((id) => !calls.has(id)),
    'no result without its call',
  ).toEqual([]);
  expect(
    [...calls].filter((id) => !results.has(id)),
    'no call without its results',
  ).toEqual([]);
}

/** Units that must stay together, as the test sees them. */
const GROUPS: ChatMessage[][] = [
  [CONVERSATION[0]!],
  [CONVERSATION[1]!],
  [CONVERSATION[2]!],
  [CONVERSATION[3]!],
  [CONVERSATION[4]!, CONVERSATION[5]!, CONVERSATION[6]!],
  [CONVERSATION[7]!],
  [CONVERSATION[8]!],
];

/** The longest run of the newest groups that fits beside `head`, by whole-body counts. */
async function newestThatFit(head: ChatMessage[], candidates: ChatMessage[][], budget: number) {
  let best: ChatMessage[] = [];
  for (let k = 1; k <= candidates.length; k++) {
    const tail = candidates.slice(candidates.length - k).flat();
    if ((await count([...head, ...tail])) > budget) break;
    best = tail;
  }
  return best;
}

async function checkResult(result: Awaited<ReturnType<typeof fitToContext>>, budget: number) {
  expect(result.budget).toBe(budget);
  expect(result.inputTokens, 'reported count is the tokenizer count of the result').toBe(
    await count(result.messages),
  );
  expect(result.inputTokens).toBeLessThanOrEqual(budget);
  expect(result.exact).toBe(true);
  expectToolPairsWhole(result.messages as ChatMessage[]);
  expect(result.messages.at(-1), 'the newest turn is kept').toEqual(CONVERSATION.at(-1));
}

describe('fitToContext, real tokenizer counts', () => {
  it('a conversation that fits is returned unchanged by every strategy', async () => {
    const total = await count(CONVERSATION);
    for (const strategy of [
      'drop-oldest',
      'keep-system-first-recent',
      'summarize-older',
      'sliding-window',
    ] as const) {
      const result = await fitToContext(CONVERSATION, {
        model: MODEL,
        maxOutputTokens: 100,
        contextWindow: total + 100,
        strategy,
        summarize: async () => 'never',
      });
      expect(result.messages, strategy).toEqual(CONVERSATION);
      expect(result.inputTokens).toBe(total);
      expect(result.dropped).toEqual([]);
    }
  });

  // Budgets chosen so each cut lands in a different place, the tool exchange included.
  const total = count(CONVERSATION);
  const budgets = async () => {
    const t = await total;
    return [t - 10, t - 60, t - 140, t - 250, Math.floor(t / 2), Math.floor(t / 3)];
  };

  it('drop-oldest: system kept, the oldest turns dropped until it fits, as many recent as fit', async () => {
    for (const budget of await budgets()) {
      const result = await fitToContext(CONVERSATION, {
        model: MODEL,
        maxOutputTokens: 256,
        contextWindow: budget + 256,
        strategy: 'drop-oldest',
      });
      await checkResult(result, budget);
      const expected = [SYSTEM, ...(await newestThatFit([SYSTEM], GROUPS.slice(1), budget))];
      expect(result.messages, `budget ${budget}`).toEqual(expected);
      expect(result.dropped).toEqual(CONVERSATION.filter((m) => !expected.includes(m)));
    }
  });

  it('sliding-window: the last N messages, whole tool exchanges only, nothing pinned', async () => {
    const t = await total;
    const result = await fitToContext(CONVERSATION, {
      model: MODEL,
      maxOutputTokens: 0,
      contextWindow: t,
      strategy: 'sliding-window',
      windowSize: 4,
    });
    // The last 4 messages would cut the tool exchange in half: the window stops before it.
    expect(result.messages).toEqual(CONVERSATION.slice(-2));
    await checkResult(result, t);
    const wide = await fitToContext(CONVERSATION, {
      model: MODEL,
      maxOutputTokens: 0,
      contextWindow: t,
      strategy: 'sliding-window',
      windowSize: 5,
    });
    expect(wide.messages).toEqual(CONVERSATION.slice(-5));
    for (const budget of await budgets()) {
      const r = await fitToContext(CONVERSATION, {
        model: MODEL,
        maxOutputTokens: 0,
        contextWindow: budget,
        strategy: 'sliding-window',
      });
      await checkResult(r, budget);
      expect(r.messages, `budget ${budget}`).toEqual(await newestThatFit([], GROUPS, budget));
    }
  });

  it('keep-system-first-recent: system, the first user turn, then as many recent turns as fit', async () => {
    for (const budget of await budgets()) {
      const result = await fitToContext(CONVERSATION, {
        model: MODEL,
        maxOutputTokens: 100,
        contextWindow: budget + 100,
        strategy: 'keep-system-first-recent',
      });
      await checkResult(result, budget);
      const expected = [SYSTEM, FIRST, ...(await newestThatFit([SYSTEM, FIRST], GROUPS.slice(2), budget))];
      expect(result.messages, `budget ${budget}`).toEqual(expected);
    }
  });

  it('summarize-older: the turns that do not fit are summarized by the function given, the summary inserted after system', async () => {
    const t = await total;
    const budget = Math.floor(t / 2);
    const seen: ChatMessage[][] = [];
    const result = await fitToContext(CONVERSATION, {
      model: MODEL,
      maxOutputTokens: 200,
      contextWindow: budget + 200,
      strategy: 'summarize-older',
      summaryMaxTokens: 40,
      summarize: async (older, { maxTokens }) => {
        seen.push(older);
        expect(maxTokens).toBe(40);
        return 'Ada is planning a Lisbon trip on a budget; weather is mild; three hotels were found.';
      },
    });
    await checkResult(result, budget);
    const summaryMessage = {
      role: 'assistant',
      content:
        '[Previous conversation summary: Ada is planning a Lisbon trip on a budget; weather is mild; three hotels were found.]',
    };
    expect(result.messages[0]).toEqual(SYSTEM);
    expect(result.messages[1]).toEqual(summaryMessage);
    const recent = await newestThatFit([SYSTEM], GROUPS.slice(1), budget - 40);
    expect(result.messages.slice(2)).toEqual(recent);
    expect(seen).toEqual([CONVERSATION.slice(1, CONVERSATION.length - recent.length)]);
    expect(result.summary).toMatch(/^Ada is planning/);
    expect(result.dropped).toEqual(seen[0]);
  });

  it('Anthropic shape: a tool_use turn and its tool_result turn stay together; `system` takes room', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: filler('question', 8) },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'tu_1', name: 'lookup', input: { q: 'lisbon' } },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: filler('result', 8) }] },
      { role: 'assistant', content: filler('answer', 4) },
      { role: 'user', content: 'And tomorrow?' },
    ];
    const system = 'You are terse.';
    const whole = (list: unknown[]) =>
      estimateChatInput({ system, messages: list }, 'claude-sonnet-4-5', 'anthropic-messages');
    const all = (await whole(messages)).tokens;
    const withoutExchange = (await whole(messages.slice(3))).tokens;
    // Room for the last two turns and part of the tool exchange: the exchange goes whole.
    const budget = withoutExchange + 5;
    const result = await fitToContext(messages, {
      model: 'claude-sonnet-4-5',
      shape: 'anthropic-messages',
      system,
      maxOutputTokens: 50,
      contextWindow: budget + 50,
      strategy: 'drop-oldest',
    });
    expect(all).toBeGreaterThan(budget);
    expect(result.messages).toEqual(messages.slice(3));
    expect(result.inputTokens).toBe(withoutExchange);
    expect(result.exact, 'Claude is counted with o200k_base: an approximation').toBe(false);
  });

  it('when even the newest turn cannot fit: ContextWindowExceededError with the figures', async () => {
    const error = await fitToContext(CONVERSATION, {
      model: MODEL,
      maxOutputTokens: 1000,
      contextWindow: 1010,
      strategy: 'drop-oldest',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContextWindowExceededError);
    expect((error as ContextWindowExceededError).contextWindow).toBe(1010);
  });

  it('the context window comes from the model when not given; options are checked', async () => {
    const result = await fitToContext(CONVERSATION, {
      model: MODEL,
      maxOutputTokens: 1000,
      strategy: 'drop-oldest',
    });
    expect(result.budget).toBe(128_000 - 1000);
    await expect(
      fitToContext(CONVERSATION, { model: 'my-local-model', maxOutputTokens: 10, strategy: 'drop-oldest' }),
    ).rejects.toThrow('Expected `contextWindow`');
    await expect(
      fitToContext(CONVERSATION, { model: MODEL, maxOutputTokens: 10, strategy: 'summarize-older' }),
    ).rejects.toThrow('Expected `summarize` to be a function');
  });
});
