import { anthropicAdapter } from './anthropic.js';
import { openaiAdapter } from './openai.js';
import type { Detection, ProviderAdapter } from './types.js';

/** Adapters tried in order; the first that recognises the URL wins. */
export const DEFAULT_ADAPTERS: readonly ProviderAdapter[] = [anthropicAdapter, openaiAdapter];

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
