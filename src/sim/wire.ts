import type { Framing } from './frames.js';
import type { Plan } from './plan.js';
import type { SseEvent } from './sse.js';
import type { Behavior, Fault } from './types.js';

export type Json = Record<string, unknown>;

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** One provider wire format: how a planned answer, its stream and its failures look on the wire. */
export interface Wire {
  /** Anthropic reports a content filter as a stop reason in a 200; OpenAI shapes refuse with a 400 unless streaming. */
  filterInBody: boolean;
  /** How stream events are framed; default `sse`. */
  framing?: Framing;
  headers(plan: Plan, processingMs: number): Record<string, string>;
  /** The HTTP error for a fault, or null when the fault is not an HTTP error for this format. */
  error(fault: Fault, behavior: Behavior, plan: Plan): HttpReply | null;
  body(plan: Plan): unknown;
  start(plan: Plan): SseEvent[];
  /** Events for output token `step` of every choice. */
  step(plan: Plan, step: number): SseEvent[];
  /** Finish, usage and the terminal event. */
  end(plan: Plan): SseEvent[];
  errorEvent(plan: Plan): SseEvent[];
}

/** What a route makes of a request: the answer's plan, its wire format and whether it streams. */
export interface Prepared {
  plan: Plan;
  wire: Wire;
  stream: boolean;
}

export interface RouteInput {
  body: Json;
  behavior: Behavior;
  /** The model the response reports (deployment mapping and date suffix already applied). */
  model: string;
  azure: boolean;
  /** The request URL's query parameters (Gemini's `alt=sse`). */
  query: URLSearchParams;
}

export const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const optionalNumber = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

export function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((t) => {
    const name = isObject(t) ? (isObject(t.function) ? t.function.name : t.name) : undefined;
    return typeof name === 'string' ? [name] : [];
  });
}

/** A wire that only ever answers with a JSON body. */
export function bodyOnlyWire(
  body: (plan: Plan) => unknown,
  headers: Wire['headers'],
  error: Wire['error'],
  filterInBody = false,
): Wire {
  return {
    filterInBody,
    headers,
    error,
    body,
    start: () => [],
    step: () => [],
    end: () => [],
    errorEvent: () => [],
  };
}
