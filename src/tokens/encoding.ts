/**
 * Which tokenizer a model uses, and loading it lazily.
 *
 * OpenAI publishes its encodings (tiktoken); gpt-tokenizer is a pure-JS port that is
 * token-for-token identical for `o200k_base` and `cl100k_base` (bench/tokenizer.mjs checks
 * this against js-tiktoken, and against Python tiktoken where it is installed). Other vendors'
 * tokenizers are not published in a usable form, so their models are counted with `o200k_base`
 * and flagged `exact: false`.
 */

export type EncodingName = 'o200k_base' | 'cl100k_base';

export interface EncodingChoice {
  encoding: EncodingName;
  /** true only when the model is an OpenAI model whose tokenizer this is. */
  exact: boolean;
}

/**
 * A loaded tokenizer. Both methods are unbounded: their cost grows quadratically with the
 * longest run of text without a break, so untrusted text goes through `countTokens` instead.
 * Special-token text such as `<|endoftext|>` is counted as ordinary text, as the APIs do with
 * user content.
 */
export interface Encoder {
  readonly name: EncodingName;
  encode(text: string): number[];
  countUnbounded(text: string): number;
}

// gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and later, the o-series, chatgpt-4o, gpt-oss and the
// realtime/audio/image models (tiktoken's model.py and gpt-tokenizer's model map agree).
const O200K =
  /^(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-[5-9]|gpt-\d{2,}|o[1-9](?:-|$)|chatgpt-|gpt-oss|codex-|gpt-realtime|gpt-audio|gpt-image|omni-moderation|computer-use)/;
const CL100K = /^(?:gpt-4(?:-|$)|gpt-3\.5|text-embedding-3|text-embedding-ada-002|davinci-002|babbage-002)/;
// Deployment names (Azure) embed the model somewhere: `prod-gpt-4o-eastus`. The o-series is
// left out here: `o1`/`o3` inside an arbitrary name is too likely to be something else.
const O200K_INSIDE = /(?:^|[^a-z0-9.])(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-[5-9]|chatgpt-|gpt-oss)/;
const CL100K_INSIDE = /(?:^|[^a-z0-9.])(?:gpt-4(?:-|$)|gpt-3\.5|text-embedding-3|text-embedding-ada-002)/;

/** Lower-case, drop routing prefixes (`openai/`, `models/`, `ft:`, Bedrock's `us.openai.`), unify Azure spellings. */
function normalizeModelForEncoding(model: string): string {
  let m = model.trim().toLowerCase();
  const slash = m.lastIndexOf('/');
  if (slash >= 0) m = m.slice(slash + 1);
  if (m.startsWith('ft:')) m = m.slice(3);
  m = m.replace(/^(?:[a-z]{2,4}\.)?(?:openai|azure)\./, '');
  // Azure writes `gpt-35-turbo`; deployments often drop the dash: `gpt4o`, `gpt4-turbo`.
  return m.replace(/gpt-?35/g, 'gpt-3.5').replace(/gpt(?=[0-9])/g, 'gpt-');
}

export function encodingForModel(model: string | null): EncodingChoice {
  if (model === null) return { encoding: 'o200k_base', exact: false };
  const m = normalizeModelForEncoding(model);
  if (O200K.test(m)) return { encoding: 'o200k_base', exact: true };
  if (CL100K.test(m)) return { encoding: 'cl100k_base', exact: true };
  if (O200K_INSIDE.test(m)) return { encoding: 'o200k_base', exact: true };
  if (CL100K_INSIDE.test(m)) return { encoding: 'cl100k_base', exact: true };
  return { encoding: 'o200k_base', exact: false };
}

// Treat special-token text as plain text instead of throwing ("Disallowed special token").
const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

const loading = new Map<EncodingName, Promise<Encoder>>();

/**
 * A text adds at most one merge-cache entry per character, and the bounded counter passes at
 * most 64 KiB at a time: 32 Ki + 64 Ki stays under the cache's 100,000 entries.
 */
const CLEAR_CACHE_EVERY_CHARS = 32_768;

/**
 * Loads an encoding once per process; concurrent callers share the promise.
 *
 * This builds a private `GptEncoding` from `gpt-tokenizer/bpeRanks/<name>` rather than using the
 * `gpt-tokenizer/encoding/<name>` singleton, so that how its merge cache is used does not change
 * a module the host may also use. That cache is an LRU of 100,000 pre-tokens whose eviction gets
 * slow once it is full (a `Map` emptied from the front): counting 1 MB of fresh base64 took 2.8 s
 * with it full, 0.5 s without it, while repeated text (CJK, emoji, code) is up to 5 times faster
 * with it. Clearing it after every CLEAR_CACHE_EVERY_CHARS counted keeps it below its capacity, so
 * eviction never runs, and keeps most of the gain (bench/tokenizer.mjs).
 */
export function loadEncoding(name: EncodingName): Promise<Encoder> {
  let promise = loading.get(name);
  if (promise === undefined) {
    promise = importEncoding(name);
    loading.set(name, promise);
    // A failed import may be retried by a later call.
    promise.catch(() => loading.delete(name));
  }
  return promise;
}

async function importEncoding(name: EncodingName): Promise<Encoder> {
  const [{ GptEncoding }, ranks] = await Promise.all([
    import('gpt-tokenizer/GptEncoding'),
    // Literal specifiers so bundlers can see both files.
    name === 'o200k_base'
      ? import('gpt-tokenizer/bpeRanks/o200k_base')
      : import('gpt-tokenizer/bpeRanks/cl100k_base'),
  ]);
  const api = GptEncoding.getEncodingApi(name, () => ranks.default);
  let sinceClear = 0;
  const counted = (length: number): void => {
    sinceClear += length;
    if (sinceClear >= CLEAR_CACHE_EVERY_CHARS) {
      api.clearMergeCache();
      sinceClear = 0;
    }
  };
  return {
    name,
    encode(text) {
      const ids = api.encode(text, AS_PLAIN_TEXT);
      counted(text.length);
      return ids;
    },
    countUnbounded(text) {
      const tokens = api.countTokens(text, AS_PLAIN_TEXT);
      counted(text.length);
      return tokens;
    },
  };
}
