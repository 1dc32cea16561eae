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

export function detect(
  adapters: readonly ProviderAdapter[],
  url: URL,
  method: string,
  headers: Headers,
): Detection | null {
  for (const adapter of adapters) {
    const detection = adapter.detect(url, method, headers);
    if (detection) return detection;
  }
  return null;
}
