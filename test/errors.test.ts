/**
 * isLlmMeterError(): true for every error llm-meter throws, including from another copy of
 * the library (two versions in one dependency tree), false for anything else.
 */
import { describe, expect, it } from 'vitest';
import {
  ContextWindowExceededError,
  InvalidOptionError,
  isLlmMeterError,
  LlmMeterError,
} from '../src/errors/errors.js';
import { CircuitOpenError } from '../src/resilience/errors.js';
import { InvalidQueryError, MigrationError, SchemaTooNewError, StoreError } from '../src/store/errors.js';

describe('isLlmMeterError', () => {
  it.each([
    ['LlmMeterError', () => new LlmMeterError('x')],
    ['InvalidOptionError', () => new InvalidOptionError('x')],
    ['ContextWindowExceededError', () => new ContextWindowExceededError('m', 10, 5, 12)],
    ['StoreError', () => new StoreError('x')],
    ['SchemaTooNewError', () => new SchemaTooNewError(99, 4)],
    ['MigrationError', () => new MigrationError('x')],
    ['InvalidQueryError', () => new InvalidQueryError('from', 'bad')],
    ['CircuitOpenError', () => new CircuitOpenError('api.openai.com', 1_000)],
  ])('recognises %s', (name, make) => {
    const error = make();
    expect(error.name).toBe(name);
    expect(isLlmMeterError(error)).toBe(true);
  });

  it('recognises an error from another copy of the library by its registered brand', () => {
    class ForeignLlmMeterError extends Error {
      constructor() {
        super('from another copy');
        Object.defineProperty(this, Symbol.for('llm-meter.error'), { value: true });
      }
    }
    expect(new ForeignLlmMeterError() instanceof LlmMeterError).toBe(false);
    expect(isLlmMeterError(new ForeignLlmMeterError())).toBe(true);
  });

  it.each([
    ['a plain Error', new Error('x')],
    ['an Error merely named like ours', Object.assign(new Error('x'), { name: 'StoreError' })],
    ['a TypeError', new TypeError('x')],
    ['a string', 'StoreError'],
    ['null', null],
    ['undefined', undefined],
  ])('rejects %s', (_label, value) => {
    expect(isLlmMeterError(value)).toBe(false);
  });
});
