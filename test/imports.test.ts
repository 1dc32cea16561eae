import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The house rules (DESIGN.md, "Rules of the house"), made executable: imports point down, never
 * around. A change that crosses one fails here, naming the import, instead of waiting for a
 * review. Type-only imports count too: a type is a dependency on the module that owns it.
 */

const SRC = join(import.meta.dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'static' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Module id: the path under src/ without extension, with '/' separators. */
const idOf = (path: string) => relative(SRC, path).split('\\').join('/').replace(/\.ts$/, '');

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

function importsOf(id: string, text: string): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2]!;
    if (!spec.startsWith('.')) continue;
    out.push(posix.normalize(posix.join(posix.dirname(id), spec)).replace(/\.js$/, ''));
  }
  return out;
}

const graph = new Map<string, string[]>();
for (const file of sourceFiles(SRC)) {
  const id = idOf(file);
  graph.set(id, importsOf(id, readFileSync(file, 'utf8')));
}

/** The room a module lives in: its top folder under src/, or the file itself at the top. */
const roomOf = (id: string) => (id.includes('/') ? id.slice(0, id.indexOf('/')) : id);

const SINKS = ['telemetry', 'store', 'budgets'];
const TOP = ['server', 'cli', 'proxy'];
/** Pure functions of their inputs, and shared leaves: no wire format, sink, wrapper or transport. */
const PURE = ['tokens', 'pricing', 'timing', 'errors', 'common', 'net'];

/** For each room, the rooms it must never import, and why. */
const FORBIDDEN: Record<string, { rooms: string[]; why: string }> = {
  providers: {
    rooms: [...SINKS, ...TOP, 'fetch', 'resilience', 'meter'],
    why: 'adapters know wire formats and nothing else',
  },
  ...Object.fromEntries(
    SINKS.map((sink) => [
      sink,
      {
        rooms: [...SINKS.filter((s) => s !== sink), 'providers', 'fetch', 'resilience', ...TOP, 'meter'],
        why: 'a sink never imports another sink, an adapter or the wrapper',
      },
    ]),
  ),
  fetch: {
    rooms: [...SINKS, ...TOP, 'meter'],
    why: 'the wrapper knows nothing of the sinks, the server or the CLI',
  },
  resilience: { rooms: [...SINKS, ...TOP, 'meter'], why: 'resilience wraps fetch beneath the meter' },
  ...Object.fromEntries(
    PURE.map((room) => [
      room,
      {
        rooms: [...SINKS, ...TOP, 'providers', 'fetch', 'resilience', 'meter', 'sim'].filter(
          (r) => r !== room,
        ),
        why: `${room}/ is pure`,
      },
    ]),
  ),
  record: {
    rooms: [...SINKS, ...TOP, 'providers', 'fetch', 'resilience', 'meter'],
    why: 'the CallRecord is the ground floor',
  },
};

describe('the house rules over the import graph', () => {
  it('options.ts is a leaf: it imports only the error it throws', () => {
    expect(graph.get('options')).toEqual(['errors/errors']);
  });

  it('reads the source tree', () => {
    expect(graph.size, 'modules found under src/').toBeGreaterThan(50);
    expect(graph.get('fetch/wrap'), 'imports of fetch/wrap').toContain('fetch/request');
  });

  it('no room imports a room it must not', () => {
    const crossings: string[] = [];
    for (const [id, imports] of graph) {
      const rule = FORBIDDEN[roomOf(id)];
      if (!rule) continue;
      for (const target of imports) {
        if (rule.rooms.includes(roomOf(target))) crossings.push(`${id} → ${target} (${rule.why})`);
      }
    }
    expect(crossings, 'imports that cross the house rules').toEqual([]);
  });

  it('the simulator imports nothing from the code it judges', () => {
    const crossings = [...graph]
      .filter(([id]) => roomOf(id) === 'sim')
      .flatMap(([id, imports]) => imports.filter((t) => roomOf(t) !== 'sim').map((t) => `${id} → ${t}`));
    expect(crossings, 'sim/ imports from outside sim/').toEqual([]);
  });

  it('every relative import names a module that exists', () => {
    const missing = [...graph].flatMap(([id, imports]) =>
      imports.filter((t) => !graph.has(t)).map((t) => `${id} → ${t}`),
    );
    expect(missing, 'imports of modules not found under src/').toEqual([]);
  });

  it('has no import cycle', () => {
    // Tarjan's strongly connected components: any component of more than one module is a cycle.
    let index = 0;
    const indexOf = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string) => {
      indexOf.set(v, index);
      low.set(v, index);
      index++;
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!indexOf.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
      }
      if (low.get(v) === indexOf.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1) cycles.push(component.sort());
      }
    };
    for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
    expect(cycles, 'modules that import each other, directly or around a loop').toEqual([]);
  });
});
