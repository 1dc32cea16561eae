/**
 * The house rules on imports (DESIGN.md "imports point down, never around"), made executable: a
 * rule broken by accident fails here instead of waiting for a review.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every module of src/ a file imports (types included), as a path under src/ without extension. */
function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, ''));
}

const graph = files(SRC).map((file) => ({
  module: relative(SRC, file).replace(/\.ts$/, ''),
  imports: importsOf(file),
}));

const within = (module: string, dirs: string[]) =>
  dirs.some((d) => module === d || module.startsWith(`${d}/`));

/** [modules the rule is about, what they must not import, why] */
const rules: [string[], string[], string][] = [
  [
    ['providers', 'fetch', 'resilience'],
    ['telemetry', 'store', 'budgets', 'meter', 'server', 'cli', 'proxy'],
    'the wrapper, the adapters and the resilience wrappers know nothing of the sinks or the wiring',
  ],
  [
    ['tokens', 'pricing', 'timing', 'errors'],
    ['providers', 'fetch', 'resilience', 'telemetry', 'store', 'budgets', 'meter', 'server', 'cli', 'proxy'],
    'pure functions of their inputs',
  ],
  [['options'], ['*'], 'a leaf: only the error it throws'],
];

describe('imports point down, never around', () => {
  it('the graph was read', () => {
    expect(graph.length).toBeGreaterThan(50);
    expect(graph.find((m) => m.module === 'fetch/wrap')?.imports).toContain('fetch/request');
  });

  it.each(rules)('%j import none of %j: %s', (from, forbidden) => {
    const broken = graph
      .filter((m) => within(m.module, from))
      .flatMap((m) =>
        m.imports
          .filter((i) => (forbidden[0] === '*' ? i !== 'errors/errors' : within(i, forbidden)))
          .map((i) => `${m.module} -> ${i}`),
      );
    expect(broken).toEqual([]);
  });
});
