import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AttributionInput } from '../attribution.js';
import { InvalidOptionError } from '../errors/errors.js';
import { type ApiKey, apiKeyOf, CREDENTIAL_HEADERS } from '../providers/credentials.js';
import type { GatewayKey } from './types.js';

const GATEWAY_KEY_PREFIX = 'lmk_';

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

/** Where a client presents a key: the header its SDK uses, and the key. */
type PresentedKey = ApiKey;

/** The key a client sent, where its SDK put it (see CREDENTIAL_HEADERS). */
export function presentedKey(headers: Record<string, string>): PresentedKey | null {
  return apiKeyOf(headers);
}

/** Put the provider key where the client put the gateway key; drop any other credential header. */
export function swapKey(headers: Record<string, string>, presented: PresentedKey, providerKey: string): void {
  for (const h of CREDENTIAL_HEADERS) delete headers[h];
  headers[presented.header] = presented.header === 'authorization' ? `Bearer ${providerKey}` : providerKey;
}

export interface Keyring {
  lookup(key: string): GatewayKey | null;
  readonly size: number;
}

const digest = (key: string) => createHash('sha256').update(key).digest('hex');

const FIELDS = ['user', 'project', 'feature'] as const;
const PINNABLE = new Set<string>([...FIELDS, 'tags']);
/** A value that can go into a header as it is (a key with a stray newline would break the request). */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === 'string');

function checkEntry(key: string, entry: unknown): GatewayKey {
  if (!key.startsWith(GATEWAY_KEY_PREFIX) || key.length < GATEWAY_KEY_PREFIX.length + 16) {
    throw new InvalidOptionError(
      `Expected gateway keys to start with "${GATEWAY_KEY_PREFIX}" and be at least 20 characters.`,
    );
  }
  // Messages name the field, never the key itself nor a provider key.
  const e = entry as Record<string, unknown> | null;
  if (typeof e !== 'object' || e === null || !isStringMap(e.providerKeys)) {
    throw new InvalidOptionError(
      'Expected each gateway key to map to `{ user?, project?, feature?, tags?, pin?, providerKeys: { [upstream]: string } }`.',
    );
  }
  for (const [upstream, value] of Object.entries(e.providerKeys)) {
    if (!HEADER_SAFE.test(value)) {
      throw new InvalidOptionError(
        `Expected \`providerKeys.${upstream}\` to be a non-empty key of visible ASCII characters.`,
      );
    }
  }
  for (const field of FIELDS) {
    if (e[field] !== undefined && typeof e[field] !== 'string')
      throw new InvalidOptionError(`Expected \`${field}\` of a gateway key to be a string.`);
  }
  if (e.tags !== undefined && !isStringMap(e.tags))
    throw new InvalidOptionError('Expected `tags` of a gateway key to be an object of strings.');
  const pin = e.pin;
  if (
    pin !== undefined &&
    pin !== 'all' &&
    !(Array.isArray(pin) && pin.every((f) => typeof f === 'string' && PINNABLE.has(f)))
  ) {
    throw new InvalidOptionError(
      'Expected `pin` of a gateway key to be "all" or a list of "user", "project", "feature", "tags".',
    );
  }
  return e as unknown as GatewayKey;
}

/**
 * The attribution of a call made with `entry`, given what the client's headers asked for. A field
 * the key sets always wins; a field the key pins (`pin`) comes from the key alone, unset when the
 * key leaves it out; other fields come from the headers. Tags the key sets win over same-named
 * header tags; with `tags` pinned, header tags are ignored.
 */
export function keyAttribution(entry: GatewayKey, fromHeaders: AttributionInput): AttributionInput {
  const pinned = entry.pin === 'all' ? PINNABLE : new Set<string>(entry.pin ?? []);
  const out: AttributionInput = {};
  if (!pinned.has('tags')) {
    for (const [name, value] of Object.entries(fromHeaders)) {
      if (!(FIELDS as readonly string[]).includes(name)) out[name] = value;
    }
  }
  Object.assign(out, entry.tags ?? {});
  for (const field of FIELDS) {
    const value = entry[field] ?? (pinned.has(field) ? undefined : fromHeaders[field]);
    if (value === undefined) delete out[field];
    else out[field] = value;
  }
  return out;
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
