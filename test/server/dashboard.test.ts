/**
 * The built-in dashboard (GET /) in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against the real server with data from metered calls to the simulator in a
 * temporary SQLite file. It asks for the API token, keeps it in sessionStorage, draws its charts,
 * shows the API's totals, refreshes by itself, and loads nothing from another origin.
 * A screenshot lands in test-output/dashboard.png.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPE_KEYS } from '../../src/budgets/types.js';
import {
  EDGE_CALLS,
  type MeteredServer,
  sendTraffic,
  startServerWithTraffic,
  trafficCalls,
} from '../helpers/traffic.js';

const CHROMIUM = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const SKIP = `skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or run .ci/setup-system.sh)`;
if (!available) console.warn(`test/server/dashboard.test.ts ${SKIP}`);
const OUTPUT = new URL('../../test-output/', import.meta.url).pathname;
/** A caller-controlled name that would run script if the page ever used it as markup. */
const XSS_USER = '<img src=x onerror="window.__pwned=1">';

interface Totals {
  requests: number;
  errors: number;
  cost_usd: number | null;
  input_tokens: number;
  output_tokens: number;
  unpriced_requests: number;
}

let api: MeteredServer;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const foreignRequests: string[] = [];

/** Pixels that are clearly coloured (series), not the greys of axes, grid and text. */
async function colouredPixels(selector: string): Promise<number[]> {
  return page.$$eval(selector, (canvases) =>
    (canvases as HTMLCanvasElement[]).map((canvas) => {
      const ctx = canvas.getContext('2d');
      if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
        const max = Math.max(r, g, b);
        if (a > 0 && max > 0 && (max - Math.min(r, g, b)) / max > 0.3) count++;
      }
      return count;
    }),
  );
}

async function totals(): Promise<Totals> {
  return (await api.json<{ totals: Totals }>('/v1/usage/summary')).totals;
}

const tile = (id: string, key = 'value') => page.getAttribute(`#${id}`, `data-${key}`);

beforeAll(async () => {
  if (!available) return;
  api = await startServerWithTraffic(
    [
      { name: 'Daily spend', scope: {}, period: 'day', limit_usd: 0.005 },
      {
        name: 'Triage this month',
        scope: { feature: 'triage' },
        period: 'month',
        limit_usd: 0.02,
        action: 'alert',
      },
      { name: 'Search, all time', scope: { feature: 'search' }, period: 'total', limit_usd: 1 },
    ],
    [...trafficCalls(30), ...EDGE_CALLS, { ...trafficCalls(1, 6)[0]!, user: XSS_USER }],
  );

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (!request.url().startsWith(api.base) && !request.url().startsWith('data:')) {
      foreignRequests.push(request.url());
    }
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await api?.close();
});

describe.skipIf(!available)(`the built-in dashboard in Chromium (${available ? CHROMIUM : SKIP})`, () => {
  it('is served with a strict content security policy, and its assets from this server', async () => {
    const res = await fetch(`${api.base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    for (const asset of [
      'dashboard.js',
      'dashboard.css',
      'favicon.svg',
      'uPlot.iife.min.js',
      'uPlot.min.css',
    ]) {
      const a = await fetch(`${api.base}/assets/${asset}`);
      expect(a.status, asset).toBe(200);
      expect(a.headers.get('x-content-type-options'), asset).toBe('nosniff');
    }
    expect((await fetch(`${api.base}/assets/../package.json`)).status).toBe(404);
  });

  it('serves every script module as JavaScript, and its config from the TypeScript constants', async () => {
    const modules = readdirSync(new URL('../../src/server/static/js/', import.meta.url)).map(
      (f) => `js/${f}`,
    );
    for (const asset of ['dashboard.js', 'js/config.js', ...modules]) {
      const a = await fetch(`${api.base}/assets/${asset}`);
      expect(a.status, asset).toBe(200);
      expect(a.headers.get('content-type'), asset).toMatch(/^text\/javascript/);
      expect(a.headers.get('x-content-type-options'), asset).toBe('nosniff');
    }
    await page.goto(`${api.base}/`);
    // A string, so vitest leaves the page's own import() alone.
    const served = await page.evaluate("import('../assets/js/config.js').then((m) => m.SCOPE_KEYS)");
    expect(served, "the budget scope keys, imported under the page's policy").toEqual([...SCOPE_KEYS]);
  });

  it('asks for the API token, then keeps it in sessionStorage for this tab', async () => {
    await page.goto(`${api.base}/`);
    await page.waitForSelector('#notice:not([hidden])');
    expect(await page.textContent('#notice')).toMatch(/needs an API token/);
    expect(await page.textContent('#status')).toBe('Token needed');

    await page.fill('#token', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#notice')?.textContent?.includes('refused'));

    await page.fill('#token', api.token);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('body[data-updated]');
    expect(await page.isHidden('#notice')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('llm-meter.token'))).toBe(api.token);
    expect(await page.inputValue('#token'), 'the field does not keep showing it').toBe('');
    expect(await page.textContent('#status')).toMatch(/^Live · updated/);
  });

  it("shows the API's totals", async () => {
    const expected = await totals();
    expect(Number(await tile('kpi-requests')), 'requests').toBe(expected.requests);
    expect(Number(await tile('kpi-errors')), 'errors').toBe(expected.errors);
    expect(Number(await tile('kpi-cost')), 'cost').toBe(expected.cost_usd);
    expect(Number(await tile('kpi-tokens', 'input')), 'input tokens').toBe(expected.input_tokens);
    expect(Number(await tile('kpi-tokens', 'output')), 'output tokens').toBe(expected.output_tokens);
    // And in words: the text a person reads says the same.
    expect(await page.textContent('#kpi-requests .value')).toBe(String(expected.requests));
    const costText = (await page.textContent('#kpi-cost .value')) ?? '';
    expect(costText).toMatch(/^\$/);
    // Three significant digits: within 0.5%.
    expect(Math.abs(Number(costText.slice(1)) - expected.cost_usd!)).toBeLessThanOrEqual(
      expected.cost_usd! * 0.005,
    );
    expect(expected.unpriced_requests, 'one call has no price').toBe(1);
    expect(await page.textContent('#kpi-cost .sub')).toMatch(/1 unpriced: a lower bound/);
  });

  it('draws cost over time by model, one colour per model', async () => {
    const canvases = await colouredPixels('#chart-cost canvas');
    expect(canvases.length, 'a uPlot canvas').toBe(1);
    expect(canvases[0], 'coloured pixels in the cost chart').toBeGreaterThan(200);
    const byModel = await api.json<{ rows: Array<{ model: string; cost_usd: number | null }> }>(
      '/v1/usage/summary?group_by=model',
    );
    const legend = await page.$$eval('#legend-cost .legend-label', (els) => els.map((e) => e.textContent));
    const priced = byModel.rows.filter((r) => (r.cost_usd ?? 0) > 0).map((r) => r.model);
    expect(legend.sort()).toEqual(expect.arrayContaining(priced.sort()));
  });

  it('lists top users and features, error classes, latency and the time split per model', async () => {
    const byUser = await api.json<{ rows: Array<{ user: string }> }>('/v1/usage/summary?group_by=user');
    const users = await page.$$eval('#top-users li', (els) => els.map((e) => e.getAttribute('data-name')));
    expect(users.sort()).toEqual(byUser.rows.map((r) => r.user).sort());
    expect(users, 'a name with markup is shown as text').toContain(XSS_USER);
    expect(await page.textContent('#top-users')).toContain(XSS_USER);
    expect(await page.$$('#top-users img, #calls img'), 'no element made from it').toHaveLength(0);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    const features = await page.$$eval('#top-features li', (els) =>
      els.map((e) => e.getAttribute('data-name')),
    );
    expect(features.sort()).toEqual(['search', 'summarize', 'triage']);

    const errors = await api.json<{ events: Array<{ error_type: string }> }>(
      '/v1/usage/events?outcome=error',
    );
    const classes = await page.$$eval('#error-classes li', (els) =>
      els.map((e) => e.getAttribute('data-name')),
    );
    expect(classes.sort()).toEqual([...new Set(errors.events.map((e) => e.error_type))].sort());
    expect(await page.textContent('#outcomes')).toMatch(/cancelled/);

    const latencyModels = await page.$$eval('#latency .range-model', (els) =>
      els.map((e) => e.getAttribute('data-model')),
    );
    expect(latencyModels).toEqual(expect.arrayContaining(['gpt-4o-mini', 'claude-haiku-4-5', 'gpt-4o']));
    const phaseModels = await page.$$eval('#phases .phase-row', (els) =>
      els.map((e) => e.getAttribute('data-model')),
    );
    expect(phaseModels).toEqual(expect.arrayContaining(['gpt-4o-mini', 'llama-3.1-8b-instant']));
    const segments = await page.$$eval('#phases .phase-row[data-model="llama-3.1-8b-instant"] .seg', (els) =>
      els.map((e) => e.className),
    );
    expect(segments, 'queue, prefill and generation of a Groq-style stream').toEqual(
      expect.arrayContaining(['seg queue', 'seg prefill', 'seg generation']),
    );
  });

  it('shows each budget with spend, limit, forecast and a burn-down chart', async () => {
    const { budgets } = await api.json<{
      budgets: Array<{ id: string; spent_usd: number; limit_usd: number; forecast_usd: number | null }>;
    }>('/v1/budgets');
    expect(budgets).toHaveLength(3);
    for (const budget of budgets) {
      const card = `#budgets .budget[data-id="${budget.id}"]`;
      expect(Number(await page.getAttribute(card, 'data-limit')), 'limit').toBe(budget.limit_usd);
      expect(Number(await page.getAttribute(card, 'data-spent')), 'spent').toBeCloseTo(budget.spent_usd, 12);
      const forecast = await page.getAttribute(card, 'data-forecast');
      expect(forecast === '', 'no forecast exactly when the API has none').toBe(budget.forecast_usd === null);
      const [pixels] = await colouredPixels(`${card} canvas`);
      expect(pixels, `burn-down of ${budget.id}`).toBeGreaterThan(50);
    }
  });

  it('lists the latest calls, newest first', async () => {
    const { events } = await api.json<{ events: Array<{ id: string }> }>('/v1/usage/events?limit=15');
    const ids = await page.$$eval('#calls tbody tr', (rows) => rows.map((r) => r.getAttribute('data-id')));
    expect(ids).toEqual(events.map((e) => e.id));
  });

  it('refreshes by itself when new calls come in', async () => {
    await sendTraffic(api.meter, api.sim, trafficCalls(6, 200));
    const expected = await totals();
    await page.waitForFunction(
      (n) => document.querySelector('#kpi-requests')?.getAttribute('data-value') === String(n),
      expected.requests,
      { timeout: 30_000 },
    );
    expect(Number(await tile('kpi-cost'))).toBe(expected.cost_usd);
  });

  it('loads nothing from another origin and logs no errors', async () => {
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'dashboard.png'), fullPage: true });
    expect(foreignRequests).toEqual([]);
    // The 401s before the token was given are the only console errors.
    expect(problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
  });
});
