/**
 * The price catalog: `@pydantic/genai-prices` 0.1.8, read through its exported `findProvider`.
 *
 * What we found in the package (dist/index.d.ts, dist/index.js and its bundled data):
 * - Offline. The data (43 providers, 1,694 models) is bundled in dist/index.js, which contains
 *   no `fetch`. `updatePrices(factory)` only runs a caller-supplied factory, which is
 *   what might fetch `REMOTE_DATA_JSON_URL`; `waitForUpdate()` resolves to the bundled data until
 *   then. llm-meter calls neither, so prices change only with the package version.
 * - Cache prices: per 1M tokens, `cache_read_mtok` (509 models) and `cache_write_mtok` (166;
 *   `cache_write_1h_mtok` for Anthropic's one-hour writes, which we do not distinguish). Its
 *   usage model is ours: `input_tokens` includes cache reads and writes.
 * - Tiers: any price may be `{ base, tiers: [{ start, price }] }`; one tier applies to all the
 *   input tokens, chosen by total input tokens (`input_tokens > start`), and output is priced by
 *   the same input-token tier. 55 models have them: Gemini 1.5 (>128k), Gemini 2.5/3 Pro (>200k),
 *   Claude Sonnet 4.5/4.6 and Opus 4.6 (>200k), GPT-5.4 and later (>272k).
 * - Time: some models have a list of prices with `start_date` constraints (announced changes)
 *   or `time_of_date` windows (DeepSeek's off-peak discount). `calcPrice` picks by `new Date()`;
 *   we pick by an injected clock.
 * - Providers: openai, anthropic, google (Gemini API and Vertex, including Claude on Vertex),
 *   groq, deepseek, azure (falls back to openai, anthropic, deepseek, x-ai, moonshotai), mistral,
 *   x-ai, aws (Bedrock), cohere, perplexity, together, fireworks, cerebras, openrouter and more.
 *   No ollama: local models have no per-token price, so they need a user override.
 * - Context windows: `context_window` on about half the models (906 of 1,694).
 * - Name matching: each model has match rules (`equals`, `starts_with`, `contains`, `regex`,
 *   `or`, `and`) tested against the lower-cased name, first match wins; many rules list dated
 *   names or use `starts_with` (`claude-3-5-sonnet` matches `claude-3-5-sonnet-20241022`). If
 *   nothing matches, `calcPrice` retries once with `-YYYYMMDD` rewritten to `-YYYY-MM-DD`. It
 *   does not strip prefixes: `openai/gpt-4o-mini` and `models/gemini-2.5-pro` are not found, nor
 *   is `llama-3.3-70b-versatile` without `providerId: 'groq'`. The provider is found by id, by
 *   its `provider_match`, or by its `model_match` on the model name (openai: `gpt-`, `o1/3/4`).
 *   So llm-meter normalises names (./names.ts) and searches all providers as a last resort.
 * - Free entries (`…:free`, GitHub Copilot's subscription models) have empty prices; we skip them
 *   rather than price a call at 0.
 * - Side effects: `calcPrice` may `console.warn` about price or usage keys it does not know;
 *   llm-meter does not call it.
 *
 * We use the data, not `calcPrice`: costs are integer nano-dollars per part (DESIGN.md), and
 * `calcPrice` returns float dollars for input and output only.
 */

import {
  findProvider,
  type MatchLogic,
  type ModelInfo,
  type ModelPrice,
  type Provider,
} from '@pydantic/genai-prices';
import { type ProviderRoute, vendorOf } from './names.js';

/** Provider ids of the bundled catalog, in the order a name is searched when the provider is unknown:
 * model makers before hosts, so `gpt-4o` is OpenAI's price, not a reseller's. */
const SEARCH_ORDER = [
  'openai',
  'anthropic',
  'google',
  'mistral',
  'deepseek',
  'x-ai',
  'cohere',
  'moonshotai',
  'zhipuai',
  'zai',
  'minimax',
  'perplexity',
  'voyageai',
  'groq',
  'cerebras',
  'together',
  'fireworks',
  'aws',
  'azure',
  'novita',
  'avian',
  'baseten',
  'arcee',
  'cloudflare',
  'doubleword',
  'ovhcloud',
  'modal',
  'quicksilverpro',
  'typesafe',
  'huggingface_cerebras',
  'huggingface_fireworks-ai',
  'huggingface_groq',
  'huggingface_hyperbolic',
  'huggingface_nebius',
  'huggingface_novita',
  'huggingface_nscale',
  'huggingface_ovhcloud',
  'huggingface_publicai',
  'huggingface_sambanova',
  'huggingface_together',
  'cursor',
  'github-copilot',
  'openrouter',
] as const;

export interface CatalogMatch {
  provider: Provider;
  model: ModelInfo;
}

const providers = new Map<string, Provider | null>();

export function catalogProvider(id: string): Provider | null {
  let provider = providers.get(id);
  if (provider === undefined) {
    provider = findProvider({ providerId: id }) ?? null;
    providers.set(id, provider);
  }
  return provider;
}

/** The catalog provider the package itself would pick for a model name (`model_match`), if any. */
function catalogProviderForModel(name: string): Provider | null {
  for (const id of SEARCH_ORDER) {
    const provider = catalogProvider(id);
    if (provider?.model_match !== undefined && matches(provider.model_match, name)) return provider;
  }
  return null;
}

const regexes = new Map<string, RegExp | null>();

function compiled(pattern: string): RegExp | null {
  let re = regexes.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern);
    } catch {
      re = null;
    }
    regexes.set(pattern, re);
  }
  return re;
}

/** The package's match semantics; `name` is already lower-cased. */
export function matches(logic: MatchLogic, name: string): boolean {
  if ('or' in logic) return logic.or.some((l) => matches(l, name));
  if ('and' in logic) return logic.and.every((l) => matches(l, name));
  if ('equals' in logic) return name === logic.equals.toLowerCase();
  if ('starts_with' in logic) return name.startsWith(logic.starts_with.toLowerCase());
  if ('ends_with' in logic) return name.endsWith(logic.ends_with.toLowerCase());
  if ('contains' in logic) return name.includes(logic.contains.toLowerCase());
  if ('regex' in logic) return compiled(logic.regex)?.test(name) ?? false;
  return false;
}

/** A model is priced per token when it has an input price; free-tier entries have none. */
function pricedPerToken(model: ModelInfo): boolean {
  const prices = Array.isArray(model.prices) ? model.prices[0]?.prices : model.prices;
  return prices?.input_mtok !== undefined;
}

/** First model of `provider` (then of its fallback providers) that matches `name` and is accepted. */
function findInProvider(
  provider: Provider,
  name: string,
  accept: (m: ModelInfo) => boolean,
): CatalogMatch | null {
  for (const p of [provider, ...(provider.fallback_model_providers ?? []).map(catalogProvider)]) {
    const model = p?.models.find((m) => matches(m.match, name) && accept(m));
    if (p && model) return { provider: p, model };
  }
  return null;
}

/**
 * The catalog entry for a call: the named provider first (trying every name candidate), then the
 * provider a `vendor/` prefix or the name itself points to, then every provider in SEARCH_ORDER.
 */
export function findModel(
  route: ProviderRoute,
  candidates: readonly string[],
  accept: (m: ModelInfo) => boolean = pricedPerToken,
): CatalogMatch | null {
  if (route.kind === 'none' || candidates.length === 0) return null;
  const vendor = vendorOf(candidates[0]!);
  const providers = [
    ...(route.kind === 'catalog' ? route.ids : []).map(catalogProvider),
    vendor === null ? null : catalogProvider(vendor),
    ...candidates.map(catalogProviderForModel),
    ...SEARCH_ORDER.map(catalogProvider),
  ];
  const tried = new Set<Provider>();
  for (const provider of providers) {
    if (provider === null || tried.has(provider)) continue;
    tried.add(provider);
    for (const name of candidates) {
      const found = findInProvider(provider, name, accept);
      if (found) return found;
    }
  }
  return null;
}

function secondsOfDayUtc(hms: string): number | null {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(hms);
  if (!m) return null;
  const offset =
    m[4] === 'Z' || m[4] === undefined
      ? 0
      : (m[4].startsWith('-') ? -1 : 1) * (Number(m[4].slice(1, 3)) * 3600 + Number(m[4].slice(4, 6)) * 60);
  return (((Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) - offset) % 86_400) + 86_400) % 86_400;
}

/**
 * The model's prices at `nowMs`, with the package's rule: the last entry whose constraint holds
 * (no constraint, a start date passed, or inside a time-of-day window), else the first.
 */
export function pricesAt(model: ModelInfo, nowMs: number): ModelPrice {
  if (!Array.isArray(model.prices)) return model.prices;
  const now = new Date(nowMs);
  const secondOfDay = now.getUTCHours() * 3600 + now.getUTCMinutes() * 60 + now.getUTCSeconds();
  for (let i = model.prices.length - 1; i >= 0; i--) {
    const entry = model.prices[i]!;
    const constraint = entry.constraint;
    if (constraint === undefined) return entry.prices;
    if ('start_date' in constraint) {
      if (nowMs >= Date.parse(constraint.start_date)) return entry.prices;
    } else {
      const start = secondsOfDayUtc(constraint.start_time);
      const end = secondsOfDayUtc(constraint.end_time);
      if (start === null || end === null) continue;
      const inside =
        end < start ? secondOfDay >= start || secondOfDay < end : secondOfDay >= start && secondOfDay < end;
      if (inside) return entry.prices;
    }
  }
  return model.prices[0]?.prices ?? {};
}

/**
 * USD per 1M tokens of one price key, at the tier chosen by total input tokens; null when the key
 * is absent or malformed.
 */
export function perMillion(prices: ModelPrice, key: string, inputTokens: number): number | null {
  const value = prices[key];
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  if (value === undefined || typeof value !== 'object' || value === null) return null;
  let price = value.base;
  const tiers = [...value.tiers].sort((a, b) => a.start - b.start);
  for (const tier of tiers) if (inputTokens > tier.start) price = tier.price;
  return typeof price === 'number' && Number.isFinite(price) && price >= 0 ? price : null;
}
