/**
 * src/fetch/lifecycle.ts: the working state of a call stays in src/fetch/; what leaves is the
 * prepared call (its estimate memoised) and one frozen end.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NO_ESTIMATE } from '../../src/fetch/call.js';
import type { Engine } from '../../src/fetch/engine.js';
import { beginCall, endCall } from '../../src/fetch/lifecycle.js';
import { createTarget, endpointOf } from '../../src/fetch/request.js';
import { openaiAdapter } from '../../src/providers/openai.js';

const SRC = join(import.meta.dirname, '../../src');
const url = new URL('https://api.openai.com/v1/chat/completions');
const detection = openaiAdapter.detect(url, 'POST', new Headers())!;
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function engineWith(fields: Partial<Engine>): Engine {
  return {
    now: () => 1,
    newId: () => 'call-1',
    attribution: () => ({ tags: {} }),
    begin: () => {},
    end: () => {},
    report: () => {},
    ...fields,
  } as Engine;
}

describe('lifecycle', () => {
  it('the working state never leaves src/fetch/', () => {
    const outside = files(SRC)
      .filter((f) => !relative(SRC, f).startsWith('fetch/'))
      .filter((f) => /fetch\/(lifecycle|observers)\.js'/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(outside).toEqual([]);
  });

  it('a failing estimator: one attempt, the same rejection for every asker, no figures on the end', async () => {
    let attempts = 0;
    const ends: unknown[] = [];
    const engine = engineWith({
      estimate: () => {
        attempts++;
        throw new Error('tokenizer missing');
      },
      end: (end) => ends.push(end),
    });
    const target = createTarget(endpointOf(url), url.href, undefined);
    const info = openaiAdapter.parseRequest(body, detection);
    const state = beginCall(engine, detection, target, info, body, null, url.href, undefined)!;
    await expect(state.call.estimate()).rejects.toThrow('tokenizer missing');
    await expect(state.call.estimate()).rejects.toThrow('tokenizer missing');
    expect(attempts).toBe(1);
    endCall(engine, state, 'done', null, false);
    expect(ends).toEqual([expect.objectContaining({ preflight: NO_ESTIMATE, ending: 'done' })]);
    expect(Object.isFrozen(ends[0])).toBe(true);
  });
});
