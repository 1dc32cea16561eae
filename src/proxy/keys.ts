import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidOptionError } from '../errors/errors.js';
import type { GatewayKey } from './types.js';

export const GATEWAY_KEY_PREFIX = 'lmk_';

/** A new gateway key: `lmk_` and 32 base62 characters (190 bits). */
export function generateGatewayKey(): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let out = GATEWAY_KEY_PREFIX;
  // 248 = 4 × 62: bytes at or over it are skipped so that every character is equally likely.
  while (out.length < GATEWAY_KEY_PREFIX.length + 32) {
    for (const byte of randomBytes(48)) {
      if (byte < 248 && out.length < GATEWAY_KEY_PREFIX.length + 32) out += alphabet[byte % 62];
    }
  }
  return out;
}

/** Where a client presents a key: the header its SDK uses, and whether it is a bearer token. */
export interface PresentedKey {
  header: 'authorization' | 'x-api-key' | 'api-key' | 'x-goog-api-key';
  value: string;
}

const KEY_HEADERS = ['x-api-key', 'api-key', 'x-goog-api-key'] as const;

/** The key a client sent: `Authorization: Bearer …` (OpenAI), `x-api-key` (Anthropic), `api-key` (Azure), `x-goog-api-key` (Gemini). */
export function presentedKey(headers: Record<string, string>): PresentedKey | null {
  const auth = headers.authorization;
  if (auth && /^bearer\s+/i.test(auth))
    return { header: 'authorization', value: auth.replace(/^bearer\s+/i, '').trim() };
  for (const header of KEY_HEADERS) {
    const value = headers[header];
    if (value) return { header, value: value.trim() };
  }
  return null;
}

/** Put the provider key where the client put the gateway key; drop any other credential header. */
export function swapKey(headers: Record<string, string>, presented: PresentedKey, providerKey: string): void {
  delete headers.authorization;
  for (const h of KEY_HEADERS) delete headers[h];
  headers[presented.header] = presented.header === 'authorization' ? `Bearer ${providerKey}` : providerKey;
}

export interface Keyring {
  lookup(key: string): GatewayKey | null;
  readonly size: number;
}

const digest = (key: string) => createHash('sha256').update(key).digest('hex');

function checkEntry(key: string, entry: unknown): GatewayKey {
  if (!key.startsWith(GATEWAY_KEY_PREFIX) || key.length < GATEWAY_KEY_PREFIX.length + 16) {
    throw new InvalidOptionError(
      `Expected gateway keys to start with "${GATEWAY_KEY_PREFIX}" and be at least 20 characters.`,
    );
  }
  const e = entry as Partial<GatewayKey> | null;
  const ok =
    typeof e === 'object' &&
    e !== null &&
    typeof e.providerKeys === 'object' &&
    e.providerKeys !== null &&
    Object.values(e.providerKeys).every((v) => typeof v === 'string' && v.length > 0) &&
    ['user', 'project', 'feature'].every(
      (f) =>
        (e as Record<string, unknown>)[f] === undefined ||
        typeof (e as Record<string, unknown>)[f] === 'string',
    );
  // The message never contains the key itself.
  if (!ok)
    throw new InvalidOptionError(
      'Expected each gateway key to map to `{ user?, project?, feature?, providerKeys: { [upstream]: string } }`.',
    );
  return e as GatewayKey;
}

/**
 * Gateway keys, looked up by their SHA-256 digest: the table holds no key in the clear, and a
 * lookup's time does not depend on how much of a guessed key is right.
 */
export function createKeyring(keys: Record<string, GatewayKey>): Keyring {
  const byDigest = new Map<string, GatewayKey>();
  for (const [key, entry] of Object.entries(keys)) byDigest.set(digest(key), checkEntry(key, entry));
  return {
    lookup: (key) => (key.startsWith(GATEWAY_KEY_PREFIX) ? (byDigest.get(digest(key)) ?? null) : null),
    get size() {
      return byDigest.size;
    },
  };
}

/** Reads `{ "lmk_…": { user, project, providerKeys } }` (or the same under a `keys` property). */
export function readKeysFile(path: string): Record<string, GatewayKey> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidOptionError(
      `Expected \`keysFile\` to be a readable file (${(error as NodeJS.ErrnoException).code}).`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around a syntax error: that text may be a key.
    throw new InvalidOptionError('Expected `keysFile` to hold valid JSON.');
  }
  const table = (parsed as { keys?: unknown } | null)?.keys ?? parsed;
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    throw new InvalidOptionError('Expected `keysFile` to hold an object of gateway keys.');
  }
  return table as Record<string, GatewayKey>;
}
