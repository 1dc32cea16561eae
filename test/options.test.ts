/**
 * src/options.ts: every option is checked where it enters; a bad one throws InvalidOptionError
 * with a message that names it, a missing one takes its fallback (or is refused when REQUIRED).
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, isLlmMeterError } from '../src/errors/errors.js';
import {
  atLeast,
  bool,
  invalidOption,
  nonEmptyString,
  nonNegative,
  nonNegativeInt,
  oneOf,
  positiveInt,
  positiveNumber,
  REQUIRED,
} from '../src/options.js';

type Check = (value: unknown) => unknown;

const checks: Record<string, Check> = {
  positiveNumber: (v) => positiveNumber('opt', v, 7),
  'positiveNumber (ms)': (v) => positiveNumber('opt', v, 7, { unit: 'milliseconds' }),
  'positiveNumber (byte cap)': (v) => positiveNumber('opt', v, 7, { infinite: true }),
  nonNegative: (v) => nonNegative('opt', v, 7),
  'nonNegative (ms)': (v) => nonNegative('opt', v, 7, { unit: 'milliseconds' }),
  'atLeast 1': (v) => atLeast('opt', v, 1, 7),
  positiveInt: (v) => positiveInt('opt', v, 7),
  nonNegativeInt: (v) => nonNegativeInt('opt', v, 7),
  oneOf: (v) => oneOf('opt', v, ['queue', 'reject'], 'queue'),
  'oneOf (three)': (v) => oneOf('opt', v, ['a', 'b', 'c'], 'a'),
  bool: (v) => bool('opt', v, false),
  nonEmptyString: (v) => nonEmptyString('opt', v, 'x'),
};

/** [check, value given, what it returns] */
const accepted: [string, unknown, unknown][] = [
  ['positiveNumber', undefined, 7],
  ['positiveNumber', 0.5, 0.5],
  ['positiveNumber', 8 * 1024 * 1024, 8 * 1024 * 1024],
  ['positiveNumber (byte cap)', Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
  ['positiveNumber (byte cap)', 1, 1],
  ['nonNegative', 0, 0],
  ['nonNegative', 2.5, 2.5],
  ['nonNegative', undefined, 7],
  ['atLeast 1', 1, 1],
  ['atLeast 1', 1.5, 1.5],
  ['positiveInt', 1, 1],
  ['positiveInt', undefined, 7],
  ['nonNegativeInt', 0, 0],
  ['nonNegativeInt', 12, 12],
  ['oneOf', 'reject', 'reject'],
  ['oneOf', undefined, 'queue'],
  ['bool', true, true],
  ['bool', undefined, false],
  ['nonEmptyString', 'token', 'token'],
  ['nonEmptyString', undefined, 'x'],
];

/** [check, value given, the whole message] */
const refused: [string, unknown, string][] = [
  ['positiveNumber', 0, 'Expected `opt` to be a positive number.'],
  ['positiveNumber', -1, 'Expected `opt` to be a positive number.'],
  ['positiveNumber', Number.NaN, 'Expected `opt` to be a positive number.'],
  ['positiveNumber', Number.POSITIVE_INFINITY, 'Expected `opt` to be a positive number.'],
  ['positiveNumber', '5', 'Expected `opt` to be a positive number.'],
  ['positiveNumber', null, 'Expected `opt` to be a positive number.'],
  ['positiveNumber (ms)', 0, 'Expected `opt` to be a positive number of milliseconds.'],
  ['positiveNumber (byte cap)', 0, 'Expected `opt` to be a positive number.'],
  ['positiveNumber (byte cap)', Number.NaN, 'Expected `opt` to be a positive number.'],
  ['nonNegative', -0.1, 'Expected `opt` to be a number >= 0.'],
  ['nonNegative', Number.POSITIVE_INFINITY, 'Expected `opt` to be a number >= 0.'],
  ['nonNegative (ms)', -1, 'Expected `opt` to be a number of milliseconds >= 0.'],
  ['atLeast 1', 0, 'Expected `opt` to be a number >= 1.'],
  ['positiveInt', 0, 'Expected `opt` to be a positive integer.'],
  ['positiveInt', 1.5, 'Expected `opt` to be a positive integer.'],
  ['positiveInt', Number.POSITIVE_INFINITY, 'Expected `opt` to be a positive integer.'],
  ['positiveInt', '3', 'Expected `opt` to be a positive integer.'],
  ['nonNegativeInt', -1, 'Expected `opt` to be an integer >= 0.'],
  ['nonNegativeInt', 0.5, 'Expected `opt` to be an integer >= 0.'],
  ['oneOf', 'drop', 'Expected `opt` to be "queue" or "reject".'],
  ['oneOf', null, 'Expected `opt` to be "queue" or "reject".'],
  ['oneOf (three)', 'd', 'Expected `opt` to be "a", "b" or "c".'],
  ['bool', 'yes', 'Expected `opt` to be a boolean.'],
  ['bool', 1, 'Expected `opt` to be a boolean.'],
  ['nonEmptyString', ' ', 'Expected `opt` to be a non-empty string.'],
  ['nonEmptyString', 5, 'Expected `opt` to be a non-empty string.'],
];

describe('options', () => {
  it.each(accepted)('%s takes %o as %o', (check, value, expected) => {
    expect(checks[check]!(value)).toBe(expected);
  });

  it.each(refused)('%s refuses %o: %s', (check, value, message) => {
    let thrown: unknown;
    try {
      checks[check]!(value);
    } catch (error) {
      thrown = error;
    }
    expect(thrown, 'an InvalidOptionError').toBeInstanceOf(InvalidOptionError);
    expect(isLlmMeterError(thrown), 'one of ours').toBe(true);
    expect((thrown as Error).message, 'names the option').toBe(message);
  });

  it.each([
    ['positiveNumber', () => positiveNumber('opt', undefined, REQUIRED), 'a positive number'],
    ['nonNegativeInt', () => nonNegativeInt('opt', undefined, REQUIRED), 'an integer >= 0'],
    ['oneOf', () => oneOf('opt', undefined, ['a', 'b'], REQUIRED), '"a" or "b"'],
    ['bool', () => bool('opt', undefined, REQUIRED), 'a boolean'],
  ])('%s refuses a REQUIRED option left out', (_name, check, expected) => {
    expect(check).toThrow(`Expected \`opt\` to be ${expected}.`);
  });

  it('invalidOption names the option and says what it takes', () => {
    const error = invalidOption('maxAttempts', 'an integer');
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error.message).toBe('Expected `maxAttempts` to be an integer.');
  });

  it('is a leaf: it imports only the error it throws', async () => {
    const { readFileSync } = await import('node:fs');
    const source = readFileSync(new URL('../src/options.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
    expect(imports).toEqual(['./errors/errors.js']);
  });
});
