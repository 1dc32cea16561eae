/** Bearer-token check for /v1 (src/net/bearer.ts compares in constant time). */
import type { RequestHandler } from 'express';
import { bearerMatcher } from '../net/bearer.js';
import { HttpError } from './http-error.js';

export function bearerAuth(token: string): RequestHandler {
  const matches = bearerMatcher(token);
  return (req, res, next) => {
    if (matches(req.get('authorization'))) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="llm-meter"');
    next(new HttpError(401, 'unauthorized', 'Missing or invalid bearer token.'));
  };
}
