import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../errors/errors.js';

/**
 * Webhook secrets at rest. A secret has to be kept (an HMAC needs the secret itself), so with a
 * key from the environment (`LLM_METER_SECRET_KEY`) it is stored sealed with AES-256-GCM:
 * `enc:v1:` + base64url(12-byte IV ‖ ciphertext ‖ 16-byte tag), bound to its budget by the
 * additional data, so a sealed value copied onto another budget does not open. A value without
 * the prefix is a clear secret from before (or from a process without a key) and reads as is.
 */
const PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MIN_KEY_CHARS = 32;

export interface SecretBox {
  /** Whether secrets are sealed (a key is configured). */
  readonly sealing: boolean;
  /** The value to store for `secret`, sealed when there is a key. */
  seal(secret: string, context: string): string;
  /** The secret in a stored value, or null when it is sealed and cannot be opened here. */
  open(stored: string, context: string): string | null;
}

function isSealed(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** `keyMaterial`: any string of at least 32 characters (e.g. `openssl rand -base64 32`). */
export function createSecretBox(keyMaterial: string | undefined): SecretBox {
  if (keyMaterial !== undefined && keyMaterial.length < MIN_KEY_CHARS) {
    throw new InvalidOptionError(
      `Expected \`LLM_METER_SECRET_KEY\` to have at least ${MIN_KEY_CHARS} characters (for example \`openssl rand -base64 32\`).`,
    );
  }
  // HKDF turns any high-entropy string into the 32-byte key, and names what the key is for.
  const key = keyMaterial
    ? Buffer.from(hkdfSync('sha256', keyMaterial, 'llm-meter', 'webhook-secret/v1', 32))
    : null;
  return {
    sealing: key !== null,
    seal(secret, context) {
      if (!key) return secret;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(context));
      const sealed = Buffer.concat([iv, cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return PREFIX + sealed.toString('base64url');
    },
    open(stored, context) {
      if (!isSealed(stored)) return stored;
      if (!key) return null;
      try {
        const sealed = Buffer.from(stored.slice(PREFIX.length), 'base64url');
        if (sealed.length < IV_BYTES + TAG_BYTES) return null;
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES))
          .setAAD(Buffer.from(context))
          .setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const clear = Buffer.concat([
          decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]);
        return clear.toString('utf8');
      } catch {
        // Another key, or a damaged value: the tag does not verify.
        return null;
      }
    },
  };
}
