/**
 * The built-in dashboard: `GET /` is one HTML page whose script reads the JSON API (with the
 * bearer token the user types, kept in sessionStorage) and draws with uPlot. Everything it
 * loads comes from this server: the page, its script and style from ./static, uPlot from the
 * installed `uplot` package. No build step, no CDN, works offline.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import { HttpError } from './http-error.js';
import { defineRoute, type RouteModule } from './types.js';

/**
 * ./static next to this file when running from src/ (tests, tsx); from dist/server/ the
 * build leaves the assets where they are, in src/server/static.
 */
function staticDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, 'static'), join(here, '..', '..', 'src', 'server', 'static')]) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

function uplotDir(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve('uplot'));
  } catch {
    return null;
  }
}

/** The page talks to this origin only; uPlot styles its elements through the CSSOM, not attributes. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const VENDOR: Record<string, string> = {
  'uPlot.iife.min.js': 'uPlot.iife.min.js',
  'uPlot.min.css': 'uPlot.min.css',
};

/** `GET /`, documented in /openapi.json like every other route. */
export function dashboardRoutes(): RouteModule {
  const dir = staticDir();
  const html = dir ? readFileSync(join(dir, 'index.html'), 'utf8') : null;
  return {
    routes: [
      defineRoute({
        method: 'get',
        path: '/',
        summary: 'The built-in dashboard (HTML). It reads the /v1 API with the token typed into it.',
        auth: false,
        responses: {
          200: { description: 'The dashboard page.', content: { 'text/html': { type: 'string' } } },
          503: { description: 'The dashboard assets are not installed.' },
        },
        handler({ res }) {
          if (html === null) {
            throw new HttpError(503, 'unavailable', 'The dashboard assets (src/server/static) are missing.');
          }
          res.setHeader('Content-Security-Policy', CSP);
          res.setHeader('X-Content-Type-Options', 'nosniff');
          res.setHeader('Referrer-Policy', 'no-referrer');
          res.setHeader('Cache-Control', 'no-cache');
          res.type('html').send(html);
        },
      }),
    ],
  };
}

/** `/assets/*`: the page's script and style, and uPlot from node_modules. */
export function dashboardAssets(): Router {
  const router = express.Router();
  const headers = (res: express.Response) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Revalidated on each load (ETag), so an upgrade shows at once.
    res.setHeader('Cache-Control', 'no-cache');
  };
  const vendor = uplotDir();
  if (vendor) {
    for (const [name, file] of Object.entries(VENDOR)) {
      const path = join(vendor, file);
      router.get(`/assets/${name}`, (_req, res, next) => {
        headers(res);
        res.sendFile(path, (error) => error && next(error));
      });
    }
  }
  const dir = staticDir();
  if (dir) {
    router.use(
      '/assets',
      express.static(dir, { index: false, redirect: false, fallthrough: true, setHeaders: headers }),
    );
  }
  return router;
}
