/**
 * Context windows: the catalog's `context_window` where it has one (about half its models),
 * otherwise this table of major families from the providers' model pages. Unknown: null.
 * Local servers (Ollama) get null: their window is a server setting (`num_ctx`).
 */

import { findModel } from './catalog.js';
import { nameCandidates, routeForProvider } from './names.js';

// First match wins, so longer prefixes come first. Matched against the name without a
// routing prefix, lower-cased.
const FAMILIES: readonly (readonly [RegExp, number])[] = [
  [/^gpt-4o/, 128_000],
  [/^chatgpt-4o/, 128_000],
  [/^gpt-4\.1/, 1_047_576],
  [/^gpt-4\.5/, 128_000],
  [/^gpt-4-turbo|^gpt-4-\d{4}-preview|^gpt-4-vision/, 128_000],
  [/^gpt-4-32k/, 32_768],
  [/^gpt-4(?:-|$)/, 8_192],
  [/^gpt-5/, 400_000],
  [/^o[1-9](?:-|$)/, 200_000],
  [/^gpt-3\.5-turbo|^gpt-35-turbo/, 16_385],
  [/^claude-/, 200_000],
  [/^gemini-(?:1\.5|2\.\d)/, 1_048_576],
];

const MAX_MODEL_NAME_LENGTH = 256;
const cache = new Map<string, number | null>();
const CACHE_SIZE = 1_000;

function fromTable(candidates: readonly string[]): number | null {
  for (const name of candidates) {
    for (const [pattern, window] of FAMILIES) if (pattern.test(name)) return window;
  }
  return null;
}

/** The model's context window in tokens (input plus output), or null when unknown. */
export function contextWindow(provider: string | null, model: string | null): number | null {
  if (model === null || model.length === 0 || model.length > MAX_MODEL_NAME_LENGTH) return null;
  const key = `${provider ?? ''}\u0000${model}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const candidates = nameCandidates(model);
  const route = routeForProvider(provider);
  // A local server's window is its own setting (Ollama's `num_ctx`), not the model's maximum.
  const window =
    route.kind === 'none'
      ? null
      : (findModel(route, candidates, (m) => m.context_window !== undefined)?.model.context_window ??
        fromTable(candidates));
  if (cache.size >= CACHE_SIZE) cache.clear();
  cache.set(key, window);
  return window;
}
