import type { RequestInfo } from '../record.js';
import { anthropicAdapter } from './anthropic.js';
import { geminiAdapter } from './gemini.js';
import { ollamaAdapter } from './ollama.js';
import { openaiAdapter } from './openai.js';
import type { Detection, ProviderAdapter } from './types.js';

/**
 * Adapters tried in order; the first that recognises the URL wins. Ollama comes before OpenAI:
 * its legacy `/api/embeddings` would otherwise match OpenAI's `…/embeddings`.
 */
export const DEFAULT_ADAPTERS: readonly ProviderAdapter[] = [
  anthropicAdapter,
  geminiAdapter,
  ollamaAdapter,
  openaiAdapter,
];

type UrlOnly = { detect(url: URL, method: string): Detection | null };

/** An adapter whose `detect` does not take the headers: it decides from URL and method alone. */
export function urlOnly(adapter: ProviderAdapter): boolean {
  return adapter.detect.length < 3;
}

/**
 * The first adapter's detection. `headers` may be given lazily: the request's headers are copied
 * only for an adapter whose `detect` declares the parameter (none of the built-in ones does;
 * they go by URL and method), which saves a header copy on every call.
 */
export function detect(
  adapters: readonly ProviderAdapter[],
  url: URL,
  method: string,
  headers: Headers | (() => Headers),
): Detection | null {
  let copied: Headers | null = typeof headers === 'function' ? null : headers;
  for (const adapter of adapters) {
    let detection: Detection | null;
    if (urlOnly(adapter)) {
      detection = (adapter as unknown as UrlOnly).detect(url, method);
    } else {
      copied ??= (headers as () => Headers)();
      detection = adapter.detect(url, method, copied);
    }
    if (detection) return detection;
  }
  return null;
}

/**
 * Whether a detected call is an LLM call once its body is known, decided by the URL and the
 * fields that matter, never by the absence of fields nobody reads. `info` is what the adapter
 * read from a JSON body, or null when the body is not JSON (or could not be read).
 *
 * - Not JSON: an LLM call, unmetered only on a path other servers use too (`requiresJsonBody`,
 *   Ollama's `/api/chat` on a host not known to be Ollama's), where the provider would refuse it.
 * - JSON naming a model (in the body or the URL): an LLM call, whatever else the body holds.
 * - JSON naming no model: an app's own route that happens to share the path, and passes, unless a
 *   field llm-meter reads has a type the API does not take (`parsed: false`, e.g. `"model": 7`) on
 *   a path only LLM APIs use: some servers (llama.cpp) ignore what they cannot read and serve the
 *   call with their default model, and a call the meter cannot vouch for is metered, not waved by.
 *
 * The meter and the resilience wrappers both decide by this, so neither acts on a call the
 * other lets pass.
 */
export function isLlmCall(detection: Detection, info: RequestInfo | null): boolean {
  if (info === null) return !detection.requiresJsonBody;
  if (info.model !== null) return true;
  return !info.parsed && !detection.requiresJsonBody;
}
