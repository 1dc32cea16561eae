/**
 * The npm `undici`, loaded without touching the process's global fetch.
 *
 * Loading undici installs its own Agent as the process-wide dispatcher when none is set yet
 * (lib/global.js: `if (getGlobalDispatcher() === undefined) setGlobalDispatcher(new Agent())`),
 * and Node's built-in `fetch` reads that same global. So a plain `import 'undici'` would move
 * every `fetch` of the host application onto llm-meter's copy of undici: a change to calls that
 * have nothing to do with llm-meter. Webhooks pass their dispatcher explicitly and need no
 * global, so the global is put back as it was found.
 */
import { createRequire } from 'node:module';

type Undici = typeof import('undici');

const GLOBALS = [Symbol.for('undici.globalDispatcher.1'), Symbol.for('undici.globalDispatcher.2')];

let loaded: Undici | null = null;

export function undici(): Undici {
  if (loaded) return loaded;
  const scope = globalThis as Record<symbol, unknown>;
  const before = GLOBALS.map((key) => scope[key]);
  loaded = createRequire(import.meta.url)('undici') as Undici;
  // undici defines them writable (not configurable): assigning restores the earlier value,
  // `undefined` included, so whichever fetch the host uses first installs its own dispatcher.
  GLOBALS.forEach((key, i) => {
    if (scope[key] !== before[i]) scope[key] = before[i];
  });
  return loaded;
}
