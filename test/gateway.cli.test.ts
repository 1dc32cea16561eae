/**
 * `llm-meter proxy` passes its per-client caps to the gateway: the built CLI, a raw client over
 * loopback, the simulator upstream.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildOnce, DIST } from './fixtures/build.js';
import { useTempDb } from './fixtures/store-tmp.js';
import { chatMessages } from './helpers/harness.js';
import { useSimulator } from './helpers/simulator.js';

const file = useSimulator();
const newDb = useTempDb();
const children: ChildProcess[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function startProxyCli(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [join(DIST, 'cli/main.js'), 'proxy', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
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

function ask(port: number): { text: () => string } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => {});
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: chatMessages });
  socket.write(
    'POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n' +
      `authorization: Bearer sk-test\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
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
