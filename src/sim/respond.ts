import type { ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { HTTP_FAULTS } from './faults.js';
import { createFramer } from './frames.js';
import { filterPlan, type Plan, stepCount, totalOutputTokens, visibleTokens } from './plan.js';
import { type SseEvent, writeChunked } from './sse.js';
import type { Behavior, SimCall, SimOutcome } from './types.js';
import type { Prepared } from './wire.js';

export const now = (): number => performance.timeOrigin + performance.now();

/** One request in flight: where to write, what to record, and the signal that the client went away. */
export interface Exchange {
  res: ServerResponse;
  call: SimCall;
  behavior: Behavior;
  signal: AbortSignal;
  random: () => number;
}

/** Rejects with an AbortError when the client goes away, which ends the response silently. */
async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms > 0) await delay(ms, undefined, { signal });
  else signal.throwIfAborted();
}

function writeHead(x: Exchange, status: number, headers: Record<string, string>): void {
  x.call.status = status;
  x.call.headersSentAt = now();
  x.res.writeHead(status, headers);
}

function finish(x: Exchange, outcome: SimOutcome, body?: string): void {
  x.call.outcome = outcome;
  x.res.end(body);
}

export function sendJson(
  x: Exchange,
  status: number,
  headers: Record<string, string>,
  body: unknown,
  outcome: SimOutcome,
): void {
  const text = JSON.stringify(body);
  writeHead(x, status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  finish(x, outcome, text);
}

/** Ends the connection without the terminal event, once what was written has left. */
async function cut(x: Exchange): Promise<void> {
  x.call.outcome = 'cut';
  const socket = x.res.socket;
  if (socket && !socket.destroyed) await new Promise<void>((resolve) => socket.write('', () => resolve()));
  x.res.destroy();
}

function recordPlan(call: SimCall, plan: Plan): void {
  call.inputTokens = plan.inputTokens;
  call.cacheReadTokens = plan.cacheReadTokens;
  call.cacheWriteTokens = plan.cacheWriteTokens;
  call.reasoningTokens = plan.reasoningTokens;
  call.prefillMs = plan.prefillMs;
  call.reasoningMs = plan.reasoningMs;
  call.generationMs = plan.generationMs;
}

/**
 * Plays a prepared answer in time: queue, then (unless an HTTP fault refuses the request) prefill,
 * then the body after the whole generation, or a stream whose first token leaves after prefill
 * and reasoning, and each next one `msPerToken` later.
 */
export async function respond(x: Exchange, prepared: Prepared): Promise<void> {
  const { wire, stream } = prepared;
  const { behavior: b, call } = x;
  let plan = prepared.plan;
  call.model = plan.model;
  call.stream = stream;
  call.queueMs = plan.queueMs;
  await sleep(plan.queueMs, x.signal);

  const filtered = b.fault === 'content_filter' && (stream || wire.filterInBody);
  const refusal = b.fault === 'error_event' && !stream ? 'server_error' : b.fault;
  if (refusal && HTTP_FAULTS.has(refusal) && !filtered) {
    const reply = wire.error(refusal, b, plan);
    if (reply) {
      sendJson(x, reply.status, reply.headers, reply.body, 'fault');
      return;
    }
  }
  if (filtered) plan = filterPlan(plan, b.faultAfterTokens);
  recordPlan(call, plan);
  await sleep(plan.prefillMs, x.signal);
  if (stream) await sendStream(x, prepared, plan, filtered);
  else await sendBody(x, prepared, plan, filtered);
}

async function sendBody(x: Exchange, { wire }: Prepared, plan: Plan, filtered: boolean): Promise<void> {
  const { behavior: b, call } = x;
  const produces = stepCount(plan) > 0;
  await sleep(plan.reasoningMs, x.signal);
  if (produces) call.firstTokenAt = now();
  await sleep(plan.generationMs, x.signal);
  if (produces) call.lastTokenAt = now();
  call.outputTokens = totalOutputTokens(plan);
  if (b.fault === 'slow_headers') await sleep(b.slowHeadersMs, x.signal);
  const processingMs = plan.queueMs + plan.prefillMs + plan.reasoningMs + plan.generationMs;
  const text = JSON.stringify(wire.body(plan));
  const bytes = Buffer.from(text);
  writeHead(x, 200, {
    'content-type': 'application/json',
    'content-length': String(bytes.length),
    ...wire.headers(plan, processingMs),
  });
  if (b.fault === 'cut_stream') {
    await writeChunked(x.res, bytes.subarray(0, bytes.length >> 1), b.chunking, x.random);
    await cut(x);
    return;
  }
  await writeChunked(x.res, bytes, b.chunking, x.random);
  finish(x, filtered ? 'fault' : 'completed');
}

async function sendStream(x: Exchange, { wire }: Prepared, plan: Plan, filtered: boolean): Promise<void> {
  const { behavior: b, call, res } = x;
  const garbage = b.fault === 'garbage';
  const framer = createFramer(wire.framing ?? 'sse', b.lineEnding);
  const send = async (events: SseEvent[], after = '') => {
    if (res.destroyed) return;
    const text = (garbage ? framer.garbage() : '') + framer.events(events) + after;
    await writeChunked(res, text, b.chunking, x.random);
  };

  if (b.fault === 'slow_headers') await sleep(b.slowHeadersMs, x.signal);
  writeHead(x, 200, {
    'content-type': framer.contentType,
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...wire.headers(plan, plan.queueMs + plan.prefillMs),
  });
  await send(wire.start(plan), garbage ? framer.noise() : '');
  await sleep(plan.reasoningMs, x.signal);

  const steps = stepCount(plan);
  const choices = plan.choices.length;
  // A cut or error event strikes where token `faultAfterTokens` would go, or before the terminal events.
  const strike = Math.min(b.faultAfterTokens, steps);
  for (let i = 0; i <= steps; i++) {
    if (i > 0 && i < steps) await sleep(plan.msPerToken, x.signal);
    x.signal.throwIfAborted();
    if (i === strike && b.fault === 'cut_stream') return cut(x);
    if (i === strike && b.fault === 'error_event') {
      await send(wire.errorEvent(plan), framer.close());
      return finish(x, 'fault');
    }
    if (i === steps) break;
    await send(wire.step(plan, i));
    call.firstTokenAt ??= now();
    call.lastTokenAt = now();
    call.outputTokens = plan.reasoningTokens + (i + 1) * choices;
  }
  await send(wire.end(plan), framer.close());
  call.outputTokens = plan.reasoningTokens + visibleTokens(plan);
  finish(x, filtered ? 'fault' : 'completed');
}
