/**
 * src/server/csv.ts: events as CSV that a spreadsheet opens as text, never as formulas, in
 * every locale (some split cells on `;` or a tab, not only on `,`).
 */
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { csvCell } from '../../src/server/csv.js';
import { createServer } from '../../src/server/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { makeRecord } from '../helpers/records.js';

const DDE = "x;=cmd|' /C calc'!A0";

describe('csvCell', () => {
  it.each<[string, unknown, string]>([
    ['plain text', 'gpt-4o', 'gpt-4o'],
    ['null', null, ''],
    ['a number, negative too', -1.5, '-1.5'],
    ['a boolean', true, 'true'],
    ['a comma', 'a,b', '"a,b"'],
    ['a quote', 'say "hi"', '"say ""hi"""'],
    ['a formula', '=1+1', `"'=1+1"`],
    ['a plus', '+1', `"'+1"`],
    ['a minus', '-2+3', `"'-2+3"`],
    ['an at', '@SUM(A1)', `"'@SUM(A1)"`],
    ['a leading tab', '\t=1', `"'\t=1"`],
    ['a leading carriage return', '\r=1', `"'\r=1"`],
    ['a formula after spaces', '  =1+1', `"'  =1+1"`],
    ['a full-width equals sign', '\uFF1D1+1', `"'\uFF1D1+1"`],
    ['a formula after a semicolon (a separator in many locales)', DDE, `"${DDE}"`],
    ['a formula after a tab', 'a\t=1', '"a\t=1"'],
    ['a formula after a line break', 'a\n=1', '"a\n=1"'],
    ['JSON', { env: '=1' }, '"{""env"":""=1""}"'],
  ])('%s', (_name, value, expected) => {
    expect(csvCell(value)).toBe(expected);
  });
});

describe('GET /v1/usage/events?format=csv', () => {
  it('quotes a cell that hides a formula behind a separator, whichever the column', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    store.write(makeRecord({ id: 'dde', user: DDE, project: '=2+3', feature: 'ok;@x', errorCode: '-1' }));
    await store.flush();
    const server = createServer({ store }).listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      const port = (server.address() as AddressInfo).port;
      const text = await (await fetch(`http://127.0.0.1:${port}/v1/usage/events?format=csv`)).text();
      const line = text.split('\r\n')[1]!;
      expect(line).toContain(`,"${DDE}",`);
      expect(line).toContain(`,"'=2+3",`);
      expect(line).toContain(`,"ok;@x",`);
      expect(line).toContain(`,"'-1",`);
      // Split the way a `;` locale would: no piece outside quotes starts a formula.
      const outsideQuotes = line.replace(/"(?:[^"]|"")*"/g, '""');
      for (const piece of outsideQuotes.split(/[;,\t]/)) expect(piece).not.toMatch(/^\s*[=+\-@]/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    }
  });
});
