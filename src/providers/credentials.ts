/**
 * The request headers that carry a provider credential, in the order a key is looked for: the
 * provider-specific ones, `x-api-key` (Anthropic), `api-key` (Azure OpenAI), `x-goog-api-key`
 * (Gemini), then `Authorization: Bearer …` (OpenAI and compatible servers, Azure with Entra ID,
 * Anthropic's auth token), which other layers (a proxy in front) may also use.
 */
export const CREDENTIAL_HEADERS = ['x-api-key', 'api-key', 'x-goog-api-key', 'authorization'] as const;

type CredentialHeader = (typeof CREDENTIAL_HEADERS)[number];

export interface ApiKey {
  /** Where the key was found, so that another can be put in its place. */
  header: CredentialHeader;
  /** The key itself: a bearer token without its scheme. */
  value: string;
}

/** Fetch `Headers`, or a header record with lower-case names (Node's `IncomingHttpHeaders`). */
type HeaderSource = Pick<Headers, 'get'> | Readonly<Record<string, string | string[] | undefined>>;

function headerOf(headers: HeaderSource, name: string): string | null {
  if (typeof headers.get === 'function') return (headers as Pick<Headers, 'get'>).get(name);
  const value = (headers as Readonly<Record<string, string | string[] | undefined>>)[name];
  return typeof value === 'string' ? value : null;
}

const BEARER = /^bearer\s+/i;

/**
 * The API key a request carries, or null. An `Authorization` header counts only with the `Bearer`
 * scheme (RFC 6750; the scheme is case-insensitive): anything else in it is not a provider key.
 */
export function apiKeyOf(headers: HeaderSource): ApiKey | null {
  for (const header of CREDENTIAL_HEADERS) {
    const raw = headerOf(headers, header)?.trim();
    if (!raw) continue;
    if (header !== 'authorization') return { header, value: raw };
    if (!BEARER.test(raw)) continue;
    const value = raw.replace(BEARER, '').trim();
    if (value) return { header, value };
  }
  return null;
}
