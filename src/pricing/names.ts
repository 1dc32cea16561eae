/**
 * From what a call says (an OpenTelemetry `gen_ai.provider.name` and a model name) to the names
 * a price may be listed under.
 */

/** Where to look for a provider's prices: catalog ids, or `none` for providers with no per-token price. */
export type ProviderRoute =
  | { kind: 'catalog'; ids: readonly string[] }
  | { kind: 'search' }
  | { kind: 'none' };

// `gen_ai.provider.name` well-known values (semantic conventions 1.37+) → catalog provider ids.
const PROVIDER_IDS: Record<string, readonly string[]> = {
  openai: ['openai'],
  anthropic: ['anthropic'],
  'azure.ai.openai': ['azure'],
  'azure.ai.inference': ['azure'],
  'gcp.gemini': ['google'],
  'gcp.vertex_ai': ['google'],
  'gcp.gen_ai': ['google'],
  groq: ['groq'],
  deepseek: ['deepseek'],
  mistral_ai: ['mistral'],
  x_ai: ['x-ai'],
  'aws.bedrock': ['aws'],
  cohere: ['cohere'],
  perplexity: ['perplexity'],
};

/** Local inference: a price only when the user gives one. */
const UNPRICED_PROVIDERS = new Set(['ollama']);

export function routeForProvider(provider: string | null): ProviderRoute {
  if (provider === null) return { kind: 'search' };
  const key = provider.trim().toLowerCase();
  if (UNPRICED_PROVIDERS.has(key)) return { kind: 'none' };
  const ids = PROVIDER_IDS[key];
  if (ids !== undefined) return { kind: 'catalog', ids };
  // `openai_compatible` and anything else: the model name decides.
  return { kind: 'search' };
}

// The vendor part of `vendor/model` names (OpenRouter, LiteLLM, Vercel AI gateway).
const VENDOR_IDS: Record<string, string> = {
  openai: 'openai',
  anthropic: 'anthropic',
  google: 'google',
  gemini: 'google',
  vertex_ai: 'google',
  mistral: 'mistral',
  mistralai: 'mistral',
  deepseek: 'deepseek',
  'deepseek-ai': 'deepseek',
  xai: 'x-ai',
  'x-ai': 'x-ai',
  groq: 'groq',
  cohere: 'cohere',
  bedrock: 'aws',
  azure: 'azure',
  moonshotai: 'moonshotai',
  perplexity: 'perplexity',
};

/** The catalog provider named by a `vendor/` prefix, if any. */
export function vendorOf(name: string): string | null {
  const slash = name.indexOf('/');
  if (slash <= 0) return null;
  return VENDOR_IDS[name.slice(0, slash)] ?? null;
}

// Suffixes that name a snapshot or an alias of the same model, tried off one at a time:
// `-latest`, `-2024-07-18`, `-20241022`, `@20241022` (Vertex), `-0613`/`-2411` (OpenAI, Mistral
// snapshots), `-001` (Gemini versions), `-v2:0`/`:0` (Bedrock versions).
const SNAPSHOT_SUFFIXES = [
  /-latest$/,
  /@(?:latest|\d{8})$/,
  /-\d{4}-\d{2}-\d{2}$/,
  /-\d{8}$/,
  /-v\d+(?::\d+)?$/,
  /:\d+$/,
  /-\d{4}$/,
  /-\d{3}$/,
];

function withoutSnapshot(name: string): string | null {
  for (const suffix of SNAPSHOT_SUFFIXES) {
    const stripped = name.replace(suffix, '');
    if (stripped !== name && stripped.length > 0) return stripped;
  }
  return null;
}

/**
 * Names to try, in order: as given (lower-cased), without a routing prefix (`openai/`,
 * `models/`, `accounts/x/models/`), then each of those with snapshot suffixes removed one by one.
 */
export function nameCandidates(model: string): string[] {
  const exact = model.trim().toLowerCase();
  const out: string[] = [];
  const add = (name: string): void => {
    if (name.length > 0 && !out.includes(name)) out.push(name);
  };
  add(exact);
  const slash = exact.lastIndexOf('/');
  const bare = slash >= 0 ? exact.slice(slash + 1) : exact;
  add(bare);
  for (const start of [exact, bare]) {
    let name: string | null = start;
    for (let i = 0; i < 4 && name !== null; i++) {
      name = withoutSnapshot(name);
      if (name !== null) add(name);
    }
  }
  return out;
}
