/**
 * Tool calls, where agent loops run up cost and model updates break callers: how deep an agent
 * loop is when it makes a call (tool-call rounds already in the conversation), and whether the
 * arguments of the calls the model made are valid JSON (a stream cut mid-arguments, or a model
 * whose argument formatting changed). Both reach the record, the span, the database row and the
 * metrics.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ADAPTERS, detect } from '../../src/providers/registry.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { createProbe, post, useProbe } from '../helpers/metered.js';

const env = useProbe({ prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } } });
const newDb = useTempDb();

function parserFor(url: string, stream = false) {
  const detection = detect(DEFAULT_ADAPTERS, new URL(url), 'POST', new Headers())!;
  const info = detection.adapter.parseRequest({ model: 'm', stream }, detection);
  return detection.adapter.createParser(detection, info);
}

const CHAT = 'https://api.openai.com/v1/chat/completions';
const RESPONSES = 'https://api.openai.com/v1/responses';
const MESSAGES = 'https://api.anthropic.com/v1/messages';

const chatToolCall = (args: string) => ({
  choices: [
    {
      index: 0,
      finish_reason: 'tool_calls',
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }],
      },
    },
  ],
});

describe('tool-call arguments judged per wire format', () => {
  it.each([
    ['valid arguments', '{"city":"Paris"}', 0],
    ['no arguments', '', 0],
    ['arguments cut short', '{"city":"Par', 1],
    ['arguments that are not JSON', "{city: 'Paris'}", 1],
  ])('chat completions, whole response: %s', (_name, args, invalid) => {
    const parser = parserFor(CHAT);
    parser.json(chatToolCall(args));
    expect(parser.result()).toMatchObject({ toolCalls: 1, invalidToolCalls: invalid });
  });

  it('chat completions, streamed: fragments of each call are joined before they are judged', () => {
    const parser = parserFor(CHAT, true);
    const delta = (index: number, args: string, name?: string) => ({
      data: JSON.stringify({
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [
                { index, ...(name ? { id: `c${index}` } : {}), function: { name, arguments: args } },
              ],
            },
          },
        ],
      }),
      event: '',
    });
    for (const event of [
      delta(0, '', 'f'),
      delta(1, '', 'g'),
      delta(0, '{"a":'),
      delta(1, '{"b":'),
      delta(0, '1}'),
      delta(1, '2'),
    ]) {
      parser.event(event);
    }
    // Call 0 is whole; call 1 never got its closing brace.
    expect(parser.result()).toMatchObject({ toolCalls: 2, invalidToolCalls: 1 });
  });

  it('streamed arguments are held up to 1 MiB per response; a call beyond it is not judged', () => {
    const parser = parserFor(CHAT, true);
    const delta = (index: number, args: string) => ({
      data: JSON.stringify({
        choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: args } }] } }],
      }),
      event: '',
    });
    const big = 'x'.repeat(600 * 1024);
    // Call 0: whole and valid. Call 1: cut, but over the budget, so not judged. Call 2: cut.
    for (const event of [
      delta(0, `{"a":"${big}`),
      delta(0, '"}'),
      delta(1, `{"b":"${big}`),
      delta(2, '{"c":'),
    ]) {
      parser.event(event);
    }
    expect(parser.result()).toMatchObject({ toolCalls: 3, invalidToolCalls: 1 });
  });

  it('responses API: the final response judges each function_call', () => {
    const parser = parserFor(RESPONSES);
    parser.json({
      status: 'completed',
      output: [
        { type: 'function_call', call_id: 'a', name: 'f', arguments: '{"x":1}' },
        { type: 'function_call', call_id: 'b', name: 'f', arguments: '{"x":' },
        { type: 'web_search_call', id: 'w' },
      ],
    });
    expect(parser.result()).toMatchObject({ toolCalls: 3, invalidToolCalls: 1 });
  });

  it('anthropic, streamed: partial_json per content block', () => {
    const parser = parserFor(MESSAGES, true);
    const events = [
      {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'tool_use', id: 't0', name: 'f', input: {} },
      },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"q":' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '"x"}' } },
      {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'tool_use', id: 't1', name: 'g', input: {} },
      },
      {
        type: 'content_block_start',
        index: 2,
        content_block: { type: 'tool_use', id: 't2', name: 'h', input: {} },
      },
      {
        type: 'content_block_delta',
        index: 2,
        delta: { type: 'input_json_delta', partial_json: '{"q":[1,' },
      },
    ];
    for (const data of events) parser.event({ event: data.type, data: JSON.stringify(data) });
    // Block 1 streamed no input (an empty object): valid. Block 2 was cut.
    expect(parser.result()).toMatchObject({ toolCalls: 3, invalidToolCalls: 1 });
  });
});

describe('through the meter', () => {
  const agentLoop = (rounds: number): OpenAI.Chat.ChatCompletionMessageParam[] => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Plan a trip.' }];
    for (let i = 0; i < rounds; i++) {
      messages.push({
        role: 'assistant',
        content: null,
        tool_calls: [{ id: `c${i}`, type: 'function', function: { name: 'search', arguments: '{"q":"x"}' } }],
      });
      messages.push({ role: 'tool', tool_call_id: `c${i}`, content: 'result' });
    }
    return messages;
  };
  const tools: OpenAI.Chat.ChatCompletionTool[] = [
    { type: 'function', function: { name: 'search', parameters: { type: 'object', properties: {} } } },
  ];

  it('the official openai client, streamed: rounds so far, two whole tool calls, nothing invalid; row, span, metric', async () => {
    const path = newDb();
    const probe = createProbe({ database: path });
    try {
      env.sim.enqueue({ toolCalls: 2 });
      const openai = new OpenAI({
        baseURL: `${env.sim.url}/v1`,
        apiKey: 'sk-test',
        fetch: probe.meter.fetch,
      });
      const stream = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: agentLoop(3),
        tools,
        stream: true,
      });
      const calls = new Map<number, string>();
      for await (const chunk of stream) {
        for (const t of chunk.choices[0]?.delta.tool_calls ?? []) {
          calls.set(t.index, (calls.get(t.index) ?? '') + (t.function?.arguments ?? ''));
        }
      }
      expect([...calls.values()].map((args) => JSON.parse(args))).toHaveLength(2);
      const record = await probe.record();
      expect(record).toMatchObject({
        toolCalls: 2,
        invalidToolCalls: 0,
        request: { toolCount: 1, toolRounds: 3 },
      });
      const span = probe.tel.llmSpans()[0]!;
      expect(span.attributes['llm_meter.request.tool_rounds']).toBe(3);
      expect(span.attributes['llm_meter.response.tool_calls']).toBe(2);
      expect(span.attributes['llm_meter.response.tool_calls.invalid']).toBeUndefined();
      const events = await probe.meter.store!.events({});
      expect(events.events[0]).toMatchObject({ tool_rounds: 3, tool_calls: 2, invalid_tool_calls: 0 });
    } finally {
      await probe.close();
    }
  });

  it("a stream cut in the middle of a tool call's arguments: one invalid call, an interrupted stream", async () => {
    const probe = env.setup();
    const res = await probe.meter.fetch(
      `${env.sim.url}/v1/chat/completions`,
      post(
        {
          model: 'gpt-4o-mini',
          messages: agentLoop(1),
          tools,
          stream: true,
          stream_options: { include_usage: true },
        },
        { toolCalls: 1, fault: 'cut_stream', faultAfterTokens: 3 },
      ),
    );
    await res.text().catch(() => undefined);
    const record = await probe.record();
    expect(record).toMatchObject({
      outcome: 'error',
      errorType: 'stream_interrupted',
      toolCalls: 1,
      invalidToolCalls: 1,
      request: { toolRounds: 1 },
    });
  });

  it('anthropic through its official client: whole tool_use inputs are valid; rounds counted from tool_use turns', async () => {
    const probe = env.setup();
    env.sim.enqueue({ toolCalls: 2 });
    const client = new Anthropic({ baseURL: env.sim.url, apiKey: 'sk-ant-test', fetch: probe.meter.fetch });
    const stream = client.messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 256,
      tools: [{ name: 'search', input_schema: { type: 'object', properties: {} } }],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'search', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'x' }] },
      ],
    });
    const message = await stream.finalMessage();
    expect(message.content.filter((b) => b.type === 'tool_use')).toHaveLength(2);
    const record = await probe.record();
    expect(record).toMatchObject({ toolCalls: 2, invalidToolCalls: 0, request: { toolRounds: 1 } });
  });

  it('the tool-call counter splits valid from invalid calls', async () => {
    const probe = env.setup();
    const res = await probe.meter.fetch(
      `${env.sim.url}/v1/chat/completions`,
      post(
        { model: 'gpt-4o-mini', messages: agentLoop(0), tools, stream: true },
        { toolCalls: 1, fault: 'cut_stream', faultAfterTokens: 3 },
      ),
    );
    await res.text().catch(() => undefined);
    const whole = await probe.meter.fetch(
      `${env.sim.url}/v1/chat/completions`,
      post({ model: 'gpt-4o-mini', messages: agentLoop(0), tools }, { toolCalls: 2 }),
    );
    await whole.json();
    await probe.meter.flush();
    const points = await probe.tel.metricPoints('llm_meter.tool_calls');
    const byValid = Object.fromEntries(
      points.map((p) => [String(p.attributes['llm_meter.tool_call.valid']), p.value]),
    );
    expect(byValid).toEqual({ true: 2, false: 1 });
  });
});
