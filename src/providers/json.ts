/** Narrowing helpers for untrusted JSON from the wire. Never throw. */
import { MAX_TOKENS } from '../record.js';

export type Json = Record<string, unknown>;

export function obj(value: unknown): Json | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

export function arr(value: unknown): unknown[] | null {
  return Array.isArray(value) ? value : null;
}

export function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A finite, non-negative number, or null. */
export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * A whole number from a finite, non-negative one, else 0. At most 2^53 − 1, so that sums of such
 * figures stay finite and exact; bounds that mean something are applied later (src/usage.ts).
 */
export function int(value: unknown): number {
  const n = num(value);
  return n === null ? 0 : Math.min(Math.round(n), Number.MAX_SAFE_INTEGER);
}

/** Some of `values` is on the wire (not undefined or null) but not a count: a string, a negative... */
export function unreadable(...values: unknown[]): boolean {
  return values.some((value) => value !== undefined && value !== null && num(value) === null);
}

/**
 * A token limit or a count the request asks for (`max_tokens`, `n`), at most MAX_TOKENS: a
 * figure so large that it stands for "no limit" must not overflow what is computed from it.
 */
export function limit(value: unknown): number | null {
  const n = num(value);
  return n === null ? null : Math.min(n, MAX_TOKENS);
}

/**
 * Type checks for the fields of a request body that llm-meter relies on. A field that is absent
 * (undefined, or JSON null, which the wire formats read as "not set") passes; one that is present
 * with another type makes the request unparsed (`RequestInfo.parsed: false`): still metered, but
 * its figures are not to be trusted. Fields llm-meter does not read are never looked at, so an
 * unknown or odd extra field changes nothing (servers ignore them too: Go's encoding/json,
 * Pydantic's default, serde without deny_unknown_fields).
 */
export function optional(value: unknown, test: (value: unknown) => boolean): boolean {
  return value === undefined || value === null || test(value);
}
export const isString = (value: unknown): boolean => typeof value === 'string';
export const isBoolean = (value: unknown): boolean => typeof value === 'boolean';
export const isArray = (value: unknown): boolean => Array.isArray(value);
export const isObject = (value: unknown): boolean => obj(value) !== null;
export const isCount = (value: unknown): boolean => num(value) !== null;
export const isFiniteNumber = (value: unknown): boolean =>
  typeof value === 'number' && Number.isFinite(value);
export const isStringOrArray = (value: unknown): boolean => isString(value) || isArray(value);

export function bool(value: unknown): boolean {
  return value === true;
}

/** Parse JSON text, or null when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Append to a bounded text buffer: output text is kept only to estimate missing usage. */
const OUTPUT_TEXT_CAP = 256 * 1024;
export function appendCapped(current: string, piece: string): string {
  if (current.length >= OUTPUT_TEXT_CAP) return current;
  return current.length + piece.length > OUTPUT_TEXT_CAP
    ? current + piece.slice(0, OUTPUT_TEXT_CAP - current.length)
    : current + piece;
}

/**
 * The longest name (a model, a response id) kept from the wire: model names become span names,
 * metric labels and report keys. Real ones are well under 100 characters.
 */
export const MAX_NAME_CHARS = 256;

/** A name from the wire (see MAX_NAME_CHARS), or null. */
export function name(value: unknown): string | null {
  return clip(str(value), MAX_NAME_CHARS);
}

/** Choices a response is believed to have: OpenAI's `n` is at most 128. Finish reasons past it are not kept. */
export const MAX_CHOICES = 128;

/** Bounded copy of a provider's error code or message, for low-cardinality attributes. */
export function clip(value: string | null, max = 120): string | null {
  return value === null ? null : value.length > max ? value.slice(0, max) : value;
}

/**
 * `body` with `value` at `body[object][key]` (the object created when absent), or null when
 * the body sets that key already: a default that never overrides the caller's own value.
 */
export function withNestedDefault(body: Json, object: string, key: string, value: unknown): Json | null {
  const inner = obj(body[object]) ?? {};
  if (inner[key] !== undefined) return null;
  return { ...body, [object]: { ...inner, [key]: value } };
}

/** Messages of `role` for which `calledTools` holds: tool-call rounds in a chat conversation. */
export function countTurns(messages: unknown, role: string, calledTools: (message: Json) => boolean): number {
  let rounds = 0;
  for (const m of arr(messages) ?? []) {
    const message = obj(m);
    if (message && message.role === role && calledTools(message)) rounds++;
  }
  return rounds;
}

/** Argument text kept per response at most; calls beyond it are not judged (they may be valid). */
const ARGUMENTS_CAP = 1024 * 1024;

/**
 * Tool-call arguments that should be JSON, judged once the response is complete: whole
 * strings (a non-streamed response) at once, stream fragments by call once they are all in.
 * An empty string is a call without arguments, not an invalid one.
 */
interface ArgumentCheck {
  whole(args: string): void;
  fragment(call: string, piece: string): void;
  /** Invalid calls so far (fragments judged now; call once, at the end). */
  invalid(): number;
}

export function createArgumentCheck(): ArgumentCheck {
  let invalid = 0;
  let pending: Map<string, string> | null = null;
  let kept = 0;
  const unjudged = new Set<string>();
  const judge = (args: string) => {
    if (args.length === 0 || args.length > ARGUMENTS_CAP) return;
    try {
      JSON.parse(args);
    } catch {
      invalid++;
    }
  };
  return {
    whole: judge,
    fragment(call, piece) {
      if (unjudged.has(call)) return;
      pending ??= new Map();
      if (kept + piece.length > ARGUMENTS_CAP) {
        // Over the budget: this call is let go rather than held in memory.
        kept -= pending.get(call)?.length ?? 0;
        pending.delete(call);
        unjudged.add(call);
        return;
      }
      kept += piece.length;
      pending.set(call, (pending.get(call) ?? '') + piece);
    },
    invalid() {
      if (pending) for (const args of pending.values()) judge(args);
      pending = null;
      kept = 0;
      return invalid;
    },
  };
}
