/**
 * Bearer-token check for /v1. Both sides are hashed first, so timingSafeEqual compares equal
 * lengths and the time taken says nothing about the token's length or content.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpError } from './http-error.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export function bearerAuth(token: string): RequestHandler {
  const expected = sha256(token);
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match && timingSafeEqual(sha256(match[1]!), expected)) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="llm-meter"');
    next(new HttpError(401, 'unauthorized', 'Missing or invalid bearer token.'));
  };
}
