/**
 * Bearer-token check (RFC 6750 §2.1). Both sides are hashed first, so timingSafeEqual compares
 * equal lengths and the time taken says nothing about the token's length or content.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** A test of an `Authorization` header against `token`. */
export function bearerMatcher(token: string): (authorization: string | undefined) => boolean {
  const expected = sha256(token);
  return (authorization) => {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
    return match !== null && timingSafeEqual(sha256(match[1]!), expected);
  };
}
