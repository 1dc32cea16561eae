import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { printable, terminalJson } from '../../src/cli/terminal.js';
import { createMeter } from '../../src/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { buildOnce } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { makeRecord } from '../helpers/records.js';

const newDb = useTempDb();
const CLI = join(process.cwd(), 'dist/cli/main.js');

/** The child's environment: no token, no exporter, unless a test says so. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('LLM_METER_API_TOKEN' in extra)) delete env['LLM_METER_API_TOKEN'];
  delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  delete env['PORT'];
  return env;
}

function cli(...args: string[]) {
  return cliWith({}, ...args);
}

function cliWith(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: childEnv(env),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  buildOnce();
  expect(existsSync(CLI), 'the CLI is built').toBe(true);
});

describe('llm-meter CLI', () => {
  it.each(['serve', 'demo', 'proxy', 'report', 'budgets', 'migrate', 'prune', 'prices'])(
    '%s --help exits 0 with usage',
    (cmd) => {
      const r = cli(cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Usage:/);
    },
  );

  it.each([
    [['nope'], /Unknown command "nope"/],
    [['report', '--group-by', 'colour'], /--group-by/],
    [['prune', '--older-than', '3 weeks'], /--older-than/],
    [['demo', '--calls', '-1'], /--calls/],
    [['serve', '--port', 'http'], /--port/],
    [['report', '--frobnicate'], /frobnicate/],
    [['proxy', '--upstream', 'nourl'], /--upstream/],
  ])('bad usage %j exits 2 naming the flag', (args, message) => {
    const r = cli(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('demo persists to --db; report, budgets and migrate read it', () => {
    const db = newDb();
    const demo = cli('demo', '--db', db, '--calls', '6', '--concurrency', '2');
    expect(demo.code, demo.err).toBe(0);
    expect(demo.out).toMatch(/10 calls, \$[0-9.]+ total/);
    const report = cli('report', '--db', db, '--group-by', 'provider', '--json');
    expect(report.code, report.err).toBe(0);
    const summary = JSON.parse(report.out) as { totals: { requests: number } };
    expect(summary.totals.requests).toBe(10);
    // Past --limit, the rest of the groups is one row that says how many it holds.
    const top = cli('report', '--db', db, '--group-by', 'provider,model', '--limit', '1');
    expect(top.code, top.err).toBe(0);
    expect(top.out).toMatch(/^\(\d+ others\) /m);
    expect(cli('report', '--db', db, '--limit', '1001').err).toMatch(/--limit/);
    const created = cli(
      'budgets',
      'create',
      '--db',
      db,
      '--name',
      'cap',
      '--limit-usd',
      '5',
      '--period',
      'month',
    );
    expect(created.code, created.err).toBe(0);
    const list = JSON.parse(cli('budgets', 'list', '--db', db, '--json').out) as {
      budgets: { spent_usd: number }[];
    };
    expect(list.budgets[0]!.spent_usd).toBeGreaterThan(0);
    const bad = cli('budgets', 'create', '--db', db, '--name', 'x', '--limit-usd', '5', '--period', 'year');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--period/);
    expect(cli('migrate', '--db', db).out).toMatch(/up to date/);
    expect(cli('prune', '--db', db, '--older-than', '90d').code).toBe(0);
  });

  it('prices shows the source and exits 1 for an unknown model', () => {
    expect(cli('prices', 'gpt-4o-mini').out).toMatch(/source: catalog/);
    const unknown = cli('prices', 'my-private-model-xyz');
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/no known price/);
  });
});

/** ESC, BEL and the other bytes that drive a terminal; none may reach it from stored text. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
const HOSTILE_MODEL = 'gpt\u001b]0;pwned\u0007\u001b[31mX';
const HOSTILE_USER = 'mallory\u001b[2J\u009b31m\u202egnp.exe\r\nTOTAL  999';

describe('printable()', () => {
  it.each<[string, string, string]>([
    ['plain text', 'gpt-4o-mini café 𝕏', 'gpt-4o-mini café 𝕏'],
    ['an OSC title and a CSI colour', 'a\u001b]0;t\u0007\u001b[31mb', 'a\\x1b]0;t\\x07\\x1b[31mb'],
    ['tab, CR and LF', 'a\tb\r\nc', 'a\\x09b\\x0d\\x0ac'],
    ['NUL and DEL', '\u0000\u007f', '\\x00\\x7f'],
    ['a C1 CSI and NEL', '\u009b31m\u0085', '\\x9b31m\\x85'],
    ['bidi overrides and isolates', '\u202eexe.txt\u2066', '\\u202eexe.txt\\u2066'],
    ['line and paragraph separators', '\u2028\u2029', '\\u2028\\u2029'],
  ])('%s', (_name, input, expected) => {
    expect(printable(input)).toBe(expected);
  });

  it('terminalJson() is the same JSON, with no raw C1 or bidi controls', () => {
    const value = { model: 'a\u009b31m\u202e\u001b\u007f', n: [1, 'x'] };
    const text = terminalJson(value);
    expect(text).not.toMatch(CONTROL);
    expect(JSON.parse(text)).toEqual(value);
    expect(text.split('\n').length).toBeGreaterThan(1);
  });
});

describe('terminal output: stored and user-supplied text is printable', () => {
  let db = '';
  beforeAll(async () => {
    db = newDb();
    const store = openSqliteStore({ path: db });
    store.write(
      makeRecord({ requestModel: HOSTILE_MODEL, responseModel: HOSTILE_MODEL, user: HOSTILE_USER }),
    );
    await store.flush();
    await store.close();
    const meter = createMeter({ database: db, webhookPollIntervalMs: 0 });
    await meter.budgets!.create({
      name: `cap\u001b]52;c;cHduZWQ=\u0007`,
      period: 'month',
      limit_usd: 5,
      scope: { model: HOSTILE_MODEL },
    });
    await meter.shutdown();
  });

  it('report prints a model name with OSC/CSI sequences as visible escapes', () => {
    const r = cli('report', '--db', db, '--group-by', 'model,user');
    expect(r.code, r.err).toBe(0);
    expect(r.out, 'no control bytes on stdout').not.toMatch(CONTROL);
    expect(r.out).toContain('gpt\\x1b]0;pwned\\x07\\x1b[31mX');
    expect(r.out).toContain('mallory\\x1b[2J\\x9b31m\\u202egnp.exe\\x0d\\x0aTOTAL  999');
    // One line per row: the newline in the user name did not forge a TOTAL row.
    expect(r.out.split('\n').filter((line) => line.startsWith('TOTAL'))).toHaveLength(1);
  });

  it('report --json stays JSON, with the exact stored strings', () => {
    const r = cli('report', '--db', db, '--group-by', 'model,user', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(CONTROL);
    const body = JSON.parse(r.out) as { rows: { model: string; user: string }[] };
    expect(body.rows.map((row) => [row.model, row.user])).toEqual([[HOSTILE_MODEL, HOSTILE_USER]]);
  });

  it('budgets list, as a table and as JSON', () => {
    const r = cli('budgets', 'list', '--db', db);
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(CONTROL);
    expect(r.out).toContain('cap\\x1b]52;c;cHduZWQ=\\x07');
    const json = cli('budgets', 'list', '--db', db, '--json');
    expect(json.out).not.toMatch(CONTROL);
    expect(
      (JSON.parse(json.out) as { budgets: { scope: { model: string } }[] }).budgets[0]!.scope.model,
    ).toBe(HOSTILE_MODEL);
  });

  it.each<[string, string[]]>([
    ['an unknown command', ['\u001b]0;pwned\u0007nope']],
    ['a bad flag value', ['report', '--group-by', '\u001b[31mcolour\u0007']],
    ['an unknown flag', ['report', '--\u001b[31mx']],
    ['a missing budget id', ['budgets', 'delete', '\u001b[2Jid', '--db', 'DB']],
    ['a model with no price', ['prices', 'my-\u001b]0;pwned\u0007model']],
    [
      'a budget name',
      ['budgets', 'create', '--db', 'DB', '--name', 'n\u001b[31m', '--limit-usd', '1', '--period', 'day'],
    ],
    ['a serve --host', ['serve', '--host', '\u001b]0;pwned\u0007', '--port', '0', '--db', 'DB']],
  ])('%s is echoed without control bytes', (_name, args) => {
    const r = cli(...args.map((a) => (a === 'DB' ? db : a)));
    expect(r.out + r.err, 'something was printed').not.toBe('');
    expect(r.out, 'stdout').not.toMatch(CONTROL);
    expect(r.err, 'stderr').not.toMatch(CONTROL);
    expect(r.out + r.err).toMatch(/\\x1b/);
  });
});

describe('serve: what it binds, and saying so truthfully', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  /** Starts `serve` and resolves with its stdout and stderr once it prints where it listens. */
  function startServe(args: string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', newDb(), ...args], {
      env: childEnv(env),
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    const started = new Promise<{ out: string; err: string; port: number }>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const match = /^llm-meter serving http:\/\/[^\s]+:(\d+)\/.*\n(.*\n)/m.exec(out);
        if (match) resolve({ out, err, port: Number(match[1]) });
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const stop = () =>
      new Promise<number | null>((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      });
    return { started, stop, stderr: () => err };
  }

  it.each<[string, string[], Record<string, string>]>([
    ['--host 0.0.0.0', ['--host', '0.0.0.0'], {}],
    ['--host ::', ['--host', '::'], {}],
    ['--host 0.0.0.0 with an empty $LLM_METER_API_TOKEN', ['--host', '0.0.0.0'], { LLM_METER_API_TOKEN: '' }],
  ])('%s without a token exits 2 naming --host and --api-token, binding nothing', (_name, args, env) => {
    const r = cliWith(env, 'serve', '--port', '0', '--db', newDb(), ...args);
    expect(r.code, r.out + r.err).toBe(2);
    expect(r.err).toMatch(/--host/);
    expect(r.err).toMatch(/--api-token/);
    expect(r.err).toMatch(/--insecure-no-auth/);
    expect(r.out).not.toMatch(/serving/);
  });

  it('an empty --api-token is bad usage', () => {
    const r = cli('serve', '--port', '0', '--db', newDb(), '--api-token', ' ');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--api-token/);
  });

  it('without a token: 127.0.0.1 and the real port, and it is so', async () => {
    const serve = startServe([]);
    const { out, port } = await serve.started;
    expect(port).toBeGreaterThan(0);
    expect(out).toContain(
      `llm-meter serving http://127.0.0.1:${port}/ (listening on 127.0.0.1:${port} only;`,
    );
    expect(out).toMatch(/only clients on this machine can connect/);
    expect((await fetch(`http://127.0.0.1:${port}/v1/usage/summary`)).status).toBe(200);
    expect(await serve.stop()).toBe(0);
  });

  it('--insecure-no-auth binds every interface, and warns on stderr', async () => {
    const serve = startServe(['--host', '0.0.0.0', '--insecure-no-auth']);
    const { out, port } = await serve.started;
    expect(out).toContain(`listening on every interface (0.0.0.0:${port})`);
    expect(out).toMatch(/open to every client/);
    expect(serve.stderr()).toMatch(/WARNING: .*no API token/);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(await serve.stop()).toBe(0);
  });

  it('with a token: every interface, /v1 behind the token', async () => {
    const serve = startServe([], { LLM_METER_API_TOKEN: 'cli-token-5e2a' });
    const { out, port } = await serve.started;
    expect(out).toContain(`listening on every interface (0.0.0.0:${port})`);
    expect(out).toMatch(/need the bearer token/);
    expect((await fetch(`http://127.0.0.1:${port}/v1/usage/summary`)).status).toBe(401);
    expect(serve.stderr()).toBe('');
    expect(await serve.stop()).toBe(0);
  });
});
