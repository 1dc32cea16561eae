/**
 * isLlmMeterError(): true for every error llm-meter throws, including from another copy of
 * the library (two versions in one dependency tree), false for anything else. safeErrorCode():
 * a provider's error code is kept only when it is an identifier, never a credential echoed back.
 */
import { describe, expect, it } from 'vitest';
import { BudgetInputError, isBudgetInputError } from '../../src/budgets/errors.js';
import { isUsageError, UsageError } from '../../src/cli/args.js';
import { safeErrorCode } from '../../src/errors/classify.js';
import {
  ContextWindowExceededError,
  InvalidOptionError,
  InvalidRecordError,
  isInvalidRecordError,
  isLlmMeterError,
  LlmMeterError,
} from '../../src/errors/errors.js';
import { CircuitOpenError, isCircuitOpenError } from '../../src/resilience/errors.js';
import { HttpError, isHttpError } from '../../src/server/http-error.js';
import {
  InvalidQueryError,
  isInvalidQueryError,
  isMigrationError,
  isSchemaTooNewError,
  isStoreError,
  MigrationError,
  SchemaTooNewError,
  StoreError,
} from '../../src/store/errors.js';
import { createProbe } from '../helpers/metered.js';

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
    ['InvalidRecordError', () => new InvalidRecordError('x')],
    ['BudgetInputError', () => new BudgetInputError('limit_usd', 'x')],
    ['UsageError', () => new UsageError('x')],
    ['HttpError', () => new HttpError(400, 'invalid_request', 'x')],
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

describe('the guards of one kind of error', () => {
  /** An error as another copy of the library builds it: its own classes, the registered brands. */
  const foreign = (name: string, kinds: string[]) => {
    const error = Object.assign(new Error('from another copy'), { name, field: 'f' });
    for (const kind of ['llm-meter.error', ...kinds.map((k) => `llm-meter.error.${k}`)]) {
      Object.defineProperty(error, Symbol.for(kind), { value: true });
    }
    return error;
  };

  it.each<[string, (error: unknown) => boolean, () => unknown]>([
    ['isBudgetInputError', isBudgetInputError, () => new BudgetInputError('name', 'x')],
    ['isInvalidRecordError', isInvalidRecordError, () => new InvalidRecordError('x')],
    ['isStoreError (a subclass)', isStoreError, () => new SchemaTooNewError(99, 4)],
    ['isInvalidQueryError', isInvalidQueryError, () => new InvalidQueryError('from', 'x')],
    ['isMigrationError', isMigrationError, () => new MigrationError('x')],
    ['isSchemaTooNewError', isSchemaTooNewError, () => new SchemaTooNewError(99, 4)],
  ])('%s: matches its own errors', (_name, guard, make) => {
    expect(guard(make())).toBe(true);
  });

  it.each<[string, (error: unknown) => boolean, string[]]>([
    ['isBudgetInputError', isBudgetInputError, ['BudgetInputError']],
    ['isInvalidRecordError', isInvalidRecordError, ['InvalidRecordError']],
    ['isStoreError', isStoreError, ['StoreError', 'InvalidQueryError']],
    ['isInvalidQueryError', isInvalidQueryError, ['StoreError', 'InvalidQueryError']],
  ])("%s: matches another copy's error by its brand", (_name, guard, kinds) => {
    expect(guard(foreign(kinds.at(-1)!, kinds))).toBe(true);
  });

  it.each<[string, (error: unknown) => boolean, string]>([
    ['isBudgetInputError', isBudgetInputError, 'BudgetInputError'],
    ['isInvalidRecordError', isInvalidRecordError, 'InvalidRecordError'],
    ['isStoreError', isStoreError, 'StoreError'],
  ])('%s: an error merely named like it does not match', (_name, guard, name) => {
    expect(guard(Object.assign(new Error('x'), { name }))).toBe(false);
    expect(guard(foreign(name, []))).toBe(false);
    expect(guard(new InvalidOptionError('x'))).toBe(false);
  });
});

describe('the guards of the errors callers tell apart match by brand, never by name', () => {
  /** An error as another copy of the library would make it: its own class, the registered brands. */
  const foreignOf = (kind: string) => {
    const error = Object.assign(new Error('from another copy'), { name: kind });
    for (const key of ['llm-meter.error', `llm-meter.error.${kind}`]) {
      Object.defineProperty(error, Symbol.for(key), { value: true });
    }
    return error;
  };

  it.each([
    ['CircuitOpenError', isCircuitOpenError, () => new CircuitOpenError('api.openai.com', 1_000)],
    ['UsageError', isUsageError, () => new UsageError('x')],
    ['HttpError', isHttpError, () => new HttpError(400, 'invalid_request', 'x')],
  ])('%s', (kind, guard: (e: unknown) => boolean, make) => {
    expect(guard(make()), 'its own').toBe(true);
    expect(guard(foreignOf(kind)), 'from another copy').toBe(true);
    expect(guard(Object.assign(new Error('x'), { name: kind })), 'merely named like it').toBe(false);
    expect(guard(new InvalidOptionError('x')), 'another of ours').toBe(false);
  });
});

describe('safeErrorCode: what of a provider error code is kept', () => {
  it.each([
    'rate_limit_exceeded',
    'insufficient_quota',
    'context_length_exceeded',
    'overloaded_error',
    'RESOURCE_EXHAUSTED',
    '429',
    'invalid_request_error',
    'content_filter',
    'model_not_found',
    'InvalidRequest.ModelNotFound',
    'ServiceUnavailableException',
    'ResponsibleAIPolicyViolation',
    'DeploymentNotFound',
    'gpt-4o-2024-08-06',
  ])('keeps %s', (code) => {
    expect(safeErrorCode(code)).toBe(code);
  });

  it.each([
    ['an old OpenAI key', `sk-${'A1b2C3d4'.repeat(6)}`],
    ['a project key', `sk-proj-${'Zx9'.repeat(30)}`],
    ['an Anthropic key', `sk-ant-api03-${'q'.repeat(93)}-AAAAAA`],
    ['an Azure key (32 hex)', '0123456789abcdef0123456789abcdef'],
    ['a Gemini key', `AIza${'Sy'.repeat(17)}x`],
    ['a Gemini key with digits', 'AIzaSyD4x9Qw2LmN8pR1tV6bZ3cF7hJ0kE5sXyQ'],
    ['a 16-character token', 'tok_a8F3kd93Jd02LsQ1'],
    ['free text', 'Incorrect API key provided'],
    ['a path', '../../etc/passwd'],
    ['markup', '<script>'],
    ['too long', `a_${'b_'.repeat(40)}`],
    ['empty', ''],
  ])('drops %s', (_label, code) => {
    expect(safeErrorCode(code)).toBeNull();
  });

  it('the record, span and row of a call whose error body echoes the key keep no trace of it', async () => {
    const key = `sk-proj-${'Kq7'.repeat(30)}`;
    const echoing: typeof fetch = async () =>
      new Response(
        JSON.stringify({
          error: { message: `Incorrect API key provided: ${key}`, type: key, code: key },
        }),
        { status: 401, headers: { 'content-type': 'application/json' } },
      );
    const probe = createProbe();
    const metered = probe.meter.wrapFetch(echoing);
    const res = await metered('https://api.openai.com/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(401);
    expect(await res.text(), 'the caller still sees the provider body unchanged').toContain(key);
    const record = await probe.record();
    expect(record).toMatchObject({ outcome: 'error', errorType: 'auth', errorCode: null });
    expect(JSON.stringify(record)).not.toContain(key.slice(8, 40));
    const spans = JSON.stringify(probe.tel.spans().map((s) => s.attributes));
    expect(spans).not.toContain(key.slice(8, 40));
    await probe.close();
  });
});
