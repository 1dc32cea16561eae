/**
 * Options are checked where they enter, with messages that name the option (p-retry's way):
 * "Expected `maxAttempts` to be a number >= 1." Each check returns the value, or `fallback`
 * when the option is not given (`undefined`; with `REQUIRED` a missing option is refused too),
 * and throws InvalidOptionError otherwise. A leaf: it imports only the error it throws.
 */
import { InvalidOptionError } from './errors/errors.js';

/** "Expected `name` to be <expected>." */
export function invalidOption(name: string, expected: string): InvalidOptionError {
  return new InvalidOptionError(`Expected \`${name}\` to be ${expected}.`);
}

/** The `fallback` of an option that must be given. */
export const REQUIRED: unique symbol = Symbol('llm-meter.required');
type Fallback<F> = F | typeof REQUIRED;

function given<F>(value: unknown, fallback: Fallback<F>): boolean {
  return value !== undefined || fallback === REQUIRED;
}

export interface NumberCheck {
  /** Named in the message: "a positive number of milliseconds". */
  unit?: string;
  /** `Infinity` passes (a cap of "no limit"); otherwise only finite numbers do. */
  infinite?: boolean;
}

function isNumber(value: unknown, check: NumberCheck | undefined): value is number {
  if (typeof value !== 'number') return false;
  return check?.infinite === true ? !Number.isNaN(value) : Number.isFinite(value);
}

const unitOf = (check: NumberCheck | undefined) => (check?.unit ? ` of ${check.unit}` : '');

/** A number > 0. */
export function positiveNumber<F = never>(
  name: string,
  value: unknown,
  fallback: Fallback<F>,
  check?: NumberCheck,
): number | F {
  if (!given(value, fallback)) return fallback as F;
  if (!isNumber(value, check) || value <= 0) throw invalidOption(name, `a positive number${unitOf(check)}`);
  return value;
}

/** A number >= `min`. */
export function atLeast<F = never>(
  name: string,
  value: unknown,
  min: number,
  fallback: Fallback<F>,
  check?: NumberCheck,
): number | F {
  if (!given(value, fallback)) return fallback as F;
  if (!isNumber(value, check) || value < min) throw invalidOption(name, `a number${unitOf(check)} >= ${min}`);
  return value;
}

/** A number >= 0. */
export function nonNegative<F = never>(
  name: string,
  value: unknown,
  fallback: Fallback<F>,
  check?: NumberCheck,
): number | F {
  return atLeast(name, value, 0, fallback, check);
}

/** An integer > 0. */
export function positiveInt<F = never>(name: string, value: unknown, fallback: Fallback<F>): number | F {
  if (!given(value, fallback)) return fallback as F;
  if (!Number.isInteger(value) || (value as number) <= 0) throw invalidOption(name, 'a positive integer');
  return value as number;
}

/** An integer >= 0. */
export function nonNegativeInt<F = never>(name: string, value: unknown, fallback: Fallback<F>): number | F {
  if (!given(value, fallback)) return fallback as F;
  if (!Number.isInteger(value) || (value as number) < 0) throw invalidOption(name, 'an integer >= 0');
  return value as number;
}

/** One of `allowed`: 'Expected `mode` to be "queue" or "reject".' */
export function oneOf<const T extends string, F = never>(
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: Fallback<F>,
): T | F {
  if (!given(value, fallback)) return fallback as F;
  if (!allowed.includes(value as T)) throw invalidOption(name, listOf(allowed));
  return value as T;
}

/** `true` or `false`. */
export function bool<F = never>(name: string, value: unknown, fallback: Fallback<F>): boolean | F {
  if (!given(value, fallback)) return fallback as F;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean');
  return value;
}

/** A string with more than white space in it. */
export function nonEmptyString<F = never>(name: string, value: unknown, fallback: Fallback<F>): string | F {
  if (!given(value, fallback)) return fallback as F;
  if (typeof value !== 'string' || value.trim() === '') throw invalidOption(name, 'a non-empty string');
  return value;
}

/** `"a", "b" or "c"` */
function listOf(values: readonly string[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  if (quoted.length < 2) return quoted[0] ?? 'nothing';
  return `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}
