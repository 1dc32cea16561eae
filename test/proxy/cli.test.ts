/**
 * `llm-meter proxy` passes its per-client caps to the gateway: the built CLI, a raw client over
 * loopback, the simulator upstream.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildOnce, DIST } from '../fixtures/build.js';
import { useTempDb } from '../fixtures/store-tmp.js';
import { chatMessages } from '../helpers/harness.js';
import { useSimulator } from '../helpers/simulator.js';

const file = useSimulator();
const newDb = useTempDb();
const children: ChildProcess[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

const KEY = 'lmk_cli0123456789abcdef0123456789ab';

/** Starts `llm-meter proxy` and resolves with its URL; `onStderr` hears all stderr so far. */
function startProxyCli(args: string[], onStderr: (stderr: string) => void = () => {}): Promise<string> {
  const child = spawn(process.execPath, [join(DIST, 'cli/main.js'), 'proxy', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      onStderr(err);
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /llm-meter proxy on (\S+)/.exec(out)?.[1];
      if (url) resolve(url);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}${out}`)));
  });
}

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 4000; i++) {
    if (done()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

function ask(port: number, key = 'sk-test', host = 'localhost'): { text: () => string } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages });
  socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n` +
      `authorization: Bearer ${key}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return { text: () => text };
}

describe('llm-meter proxy: per-client caps', () => {
  it('--max-client-connections: the second connection of one client is answered 429', async () => {
    buildOnce();
    const url = await startProxyCli([
      '--port',
      '0',
      '--upstream',
      `openai=${file.sim.url}`,
      '--db',
      newDb(),
      '--max-client-connections',
      '1',
    ]);
    const port = Number(new URL(url).port);
    const first = ask(port);
    await until(() => /^HTTP\/1\.1 200 /.test(first.text()), 'the first connection is served');
    const second = ask(port);
    await until(() => /^HTTP\/1\.1 \d{3} /.test(second.text()), 'the second connection is answered');
    expect(second.text()).toMatch(/^HTTP\/1\.1 429 /);
    expect(second.text()).toContain('rate_limit_error');
  });
});

describe('llm-meter proxy: where a gateway without keys listens', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, [join(DIST, 'cli/main.js'), 'proxy', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it.each([['0.0.0.0'], ['::']])('--host %s without --require-key exits 2, binding nothing', (host) => {
    buildOnce();
    const r = run(['--port', '0', '--host', host, '--upstream', `openai=${file.sim.url}`, '--db', newDb()]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--host/);
    expect(r.stderr).toMatch(/--require-key/);
    expect(r.stderr).toMatch(/--insecure-no-auth/);
    expect(r.stdout).not.toMatch(/proxy on/);
  });

  it('--insecure-no-auth binds every interface and warns on stderr', async () => {
    buildOnce();
    let stderr = '';
    const url = await startProxyCli(
      [
        '--port',
        '0',
        '--host',
        '0.0.0.0',
        '--insecure-no-auth',
        '--upstream',
        `openai=${file.sim.url}`,
        '--db',
        newDb(),
      ],
      (err) => (stderr = err),
    );
    const port = Number(new URL(url).port);
    await until(() => /WARNING/.test(stderr), 'the warning is on stderr');
    expect(stderr).toMatch(/WARNING: listening on "0\.0\.0\.0" with no gateway keys/);
    const call = ask(port);
    await until(() => /^HTTP\/1\.1 \d{3} /.test(call.text()), 'the call is answered');
    expect(call.text()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('--require-key allows every interface, without a warning', async () => {
    buildOnce();
    const keys = join(dirname(newDb()), 'keys.json');
    writeFileSync(keys, JSON.stringify({ [KEY]: { user: 'alice', providerKeys: { openai: 'sk-up' } } }), {
      mode: 0o600,
    });
    let stderr = '';
    const url = await startProxyCli(
      [
        '--port',
        '0',
        '--host',
        '0.0.0.0',
        '--require-key',
        '--keys',
        keys,
        '--upstream',
        `openai=${file.sim.url}`,
        '--db',
        newDb(),
      ],
      (err) => (stderr = err),
    );
    const call = ask(Number(new URL(url).port), KEY);
    await until(() => /^HTTP\/1\.1 \d{3} /.test(call.text()), 'the call is answered');
    expect(call.text()).toMatch(/^HTTP\/1\.1 200 /);
    expect(stderr).not.toMatch(/WARNING/);
  });

  it('on loopback without keys, a rebound Host is refused (421) and reaches no upstream', async () => {
    buildOnce();
    const url = await startProxyCli(['--port', '0', '--upstream', `openai=${file.sim.url}`, '--db', newDb()]);
    const call = ask(Number(new URL(url).port), 'sk-test', 'attacker.example');
    await until(() => /^HTTP\/1\.1 \d{3} /.test(call.text()), 'the call is answered');
    expect(call.text()).toMatch(/^HTTP\/1\.1 421 /);
    expect(file.sim.calls).toHaveLength(0);
  });
});
