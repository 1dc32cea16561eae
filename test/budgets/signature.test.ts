/**
 * Receivers verify deliveries with `verifyWebhook` from the package root, or with the
 * no-dependency version the README gives; both answer false, never throw, on any header.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sign } from '../../src/budgets/signature.js';
import { verifyWebhook } from '../../src/index.js';

const SECRET = 'whsec_0123456789abcdef0123';
const OLD_SECRET = 'whsec_previous-secret-value';
const BODY = '{"id":"a1","type":"budget.threshold","threshold":0.5}';
const T = 1_700_000_000;
const NOW_MS = (T + 10) * 1000;
const mac = (secret: string, t: number | string, body = BODY) =>
  createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
const good = mac(SECRET, T);

type Case = [name: string, header: unknown, expected: boolean];
const cases: Case[] = [
  ['the header as sent', sign(SECRET, BODY, T), true],
  ['v1 before t', `v1=${good},t=${T}`, true],
  ['spaces around the parts', ` t=${T} , v1=${good} `, true],
  ['a trailing comma', `t=${T},v1=${good},`, true],
  ['upper-case hex', `t=${T},v1=${good.toUpperCase()}`, true],
  ['two v1 values, the second one right (rotation)', `t=${T},v1=${mac(OLD_SECRET, T)},v1=${good}`, true],
  ['an unknown scheme alongside', `t=${T},v0=abc,v2=${'0'.repeat(64)},v1=${good}`, true],
  ['another body', `t=${T},v1=${mac(SECRET, T, '{}')}`, false],
  ['another secret only', `t=${T},v1=${mac(OLD_SECRET, T)}`, false],
  ['signed at another time', `t=${T + 1},v1=${good}`, false],
  ['stale (past the tolerance)', sign(SECRET, BODY, T - 400), false],
  ['from the future', sign(SECRET, BODY, T + 400), false],
  ['null', null, false],
  ['undefined', undefined, false],
  ['a number', 42, false],
  ['an array', [sign(SECRET, BODY, T)], false],
  ['empty', '', false],
  ['no equals sign', 'garbage', false],
  ['t only', `t=${T}`, false],
  ['v1 only', `v1=${good}`, false],
  ['empty values', 't=,v1=', false],
  ['separators only', ',,,=,=', false],
  ['a non-numeric t', `t=abc,v1=${good}`, false],
  ['a fractional t', `t=${T}.5,v1=${good}`, false],
  ['a negative t', `t=-${T},v1=${good}`, false],
  ['an enormous t', `t=${'9'.repeat(40)},v1=${good}`, false],
  ['two t values', `t=${T},t=${T + 1},v1=${good}`, false],
  ['a short v1', `t=${T},v1=${good.slice(0, 63)}`, false],
  ['a long v1', `t=${T},v1=${good}00`, false],
  ['a non-hex v1', `t=${T},v1=${'z'.repeat(64)}`, false],
  ['a v1 with a NUL', `t=${T},v1=${good.slice(0, 63)}\u0000`, false],
  ['a huge header', `t=${T},${'v1=x,'.repeat(5000)}v1=${good}`, false],
  ['keys in another case', `T=${T},V1=${good}`, false],
];

describe('verifyWebhook', () => {
  it.each(cases)('%s', (_name, header, expected) => {
    expect(verifyWebhook(SECRET, header as string, BODY, { now: NOW_MS })).toBe(expected);
  });

  it('takes the raw body as bytes, and several secrets while one is rotated', () => {
    const header = sign(OLD_SECRET, BODY, T);
    expect(verifyWebhook(SECRET, header, Buffer.from(BODY), { now: NOW_MS })).toBe(false);
    expect(verifyWebhook([SECRET, OLD_SECRET], header, Buffer.from(BODY), { now: NOW_MS })).toBe(true);
    const multibyte = '{"name":"café ☕"}';
    expect(
      verifyWebhook(SECRET, sign(SECRET, multibyte, T), new TextEncoder().encode(multibyte), { now: NOW_MS }),
    ).toBe(true);
  });

  it('the tolerance is in seconds either way, and now defaults to the clock', () => {
    const header = sign(SECRET, BODY, T);
    expect(verifyWebhook(SECRET, header, BODY, { now: (T + 60) * 1000, toleranceSec: 60 })).toBe(true);
    expect(verifyWebhook(SECRET, header, BODY, { now: (T + 61) * 1000, toleranceSec: 60 })).toBe(false);
    expect(verifyWebhook(SECRET, header, BODY, { now: (T - 61) * 1000, toleranceSec: 60 })).toBe(false);
    expect(verifyWebhook(SECRET, header, BODY)).toBe(false);
    expect(verifyWebhook(SECRET, sign(SECRET, BODY, Math.floor(Date.now() / 1000)), BODY)).toBe(true);
  });

  it('bad secrets and options are false, not a throw', () => {
    const header = sign(SECRET, BODY, T);
    expect(verifyWebhook('', header, BODY, { now: NOW_MS })).toBe(false);
    expect(verifyWebhook([], header, BODY, { now: NOW_MS })).toBe(false);
    expect(verifyWebhook(null as unknown as string, header, BODY, { now: NOW_MS })).toBe(false);
    expect(verifyWebhook(SECRET, header, null as unknown as string, { now: NOW_MS })).toBe(false);
    expect(verifyWebhook(SECRET, header, BODY, { now: Number.NaN })).toBe(false);
    expect(verifyWebhook(SECRET, header, BODY, { now: NOW_MS, toleranceSec: Number.NaN })).toBe(false);
  });
});

/** The README's no-dependency verifier, taken from the README itself so the two cannot drift. */
function readmeVerifier(): (secret: string, header: unknown, rawBody: string) => boolean {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Budgets, enforcement and webhooks'));
  const block = /Without the dependency[^\n]*\n+```js\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README: no ```js block after "Without the dependency" in the budgets section');
  const body = block.replace(/^import .*$/m, '').replace(/^export /m, '');
  return new Function('createHmac', 'timingSafeEqual', 'Buffer', `${body}\nreturn verifyWebhook;`)(
    createHmac,
    timingSafeEqual,
    Buffer,
  );
}

describe("the README's no-dependency verifier", () => {
  const verify = readmeVerifier();
  const t = Math.floor(Date.now() / 1000);
  const now = mac(SECRET, t);
  const table: Case[] = cases.map(([name, header, expected]) => [
    name,
    typeof header === 'string'
      ? header
          .replaceAll(String(T), String(t))
          .replaceAll(good, now)
          .replaceAll(good.toUpperCase(), now.toUpperCase())
      : header,
    expected,
  ]);
  it.each(table)('%s', (_name, header, expected) => {
    expect(verify(SECRET, header, BODY)).toBe(expected);
  });
});
