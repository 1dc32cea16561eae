#!/usr/bin/env node
/**
 * Tokenizers side by side, in one run: gpt-tokenizer (what llm-meter uses), js-tiktoken, the npm
 * `tiktoken` package (WebAssembly bindings to OpenAI's Rust tiktoken), and OpenAI's Python
 * tiktoken where it is installed. All on o200k_base.
 *
 *   node bench/tokenizer.mjs
 *
 * Measures first-call latency (import + first encode, each in a fresh process), throughput on
 * ~1 MB each of prose, code, JSON, CJK, emoji and base64, whether js-tiktoken's and the WASM
 * tiktoken's token ids equal gpt-tokenizer's and whether Python tiktoken's counts do, and the time
 * for long runs without a break (50,000 and 200,000 × "a", 10 s limit per case). Special-token
 * text in the corpora is encoded as plain text by all of them (tiktoken's encode_ordinary).
 *
 * Plain JavaScript so that it runs on Node 20 without a TypeScript loader; llm-meter's own
 * counting (src/tokens) is compiled into bench/out/ first. Corpora come from files in
 * node_modules (deterministic for a given lockfile) or a seeded generator.
 *
 * Python tiktoken downloads its vocabulary from the internet on first use. Where that is not
 * reachable, the vocabulary is rebuilt from js-tiktoken's copy into a private
 * TIKTOKEN_CACHE_DIR; tiktoken checks the file's SHA-256 against OpenAI's, so a mismatch fails
 * loudly rather than comparing against a wrong vocabulary.
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { table } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'bench', 'out', 'tokenizer');
const BUILD = join(OUT, 'build');
const MB = 1_000_000;
const LIMIT_MS = 10_000;
const O200K_URL = 'https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken';
const WASM_VERSION = JSON.parse(
  readFileSync(join(ROOT, 'node_modules', 'tiktoken', 'package.json'), 'utf8'),
).version;

mkdirSync(OUT, { recursive: true });

// ---------------------------------------------------------------- llm-meter's tokens module

function buildTokens() {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [
    tsc,
    '--outDir',
    BUILD,
    '--rootDir',
    join(ROOT, 'src'),
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2022',
    '--skipLibCheck',
    '--types',
    'node',
    join(ROOT, 'src', 'tokens', 'index.ts'),
  ];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
}

// ---------------------------------------------------------------- corpora

function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    return s / 2 ** 32;
  };
}

/** The first `bytes` UTF-8 bytes of `text`, not splitting a character. */
function clip(text, bytes) {
  const buf = Buffer.from(text);
  if (buf.length <= bytes) return text;
  let end = bytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/** `parts` concatenated (repeating when short) up to `bytes` UTF-8 bytes. */
function fill(parts, bytes) {
  const chunks = [];
  let size = 0;
  for (let i = 0; size < bytes && parts.length > 0; i++) {
    const part = parts[i % parts.length];
    chunks.push(part);
    size += Buffer.byteLength(part);
  }
  return clip(chunks.join(''), bytes);
}

function walk(dir, keep, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, keep, out);
    else if (keep(path)) out.push(path);
  }
  return out;
}

function corpora() {
  const nm = join(ROOT, 'node_modules');
  const random = seeded(42);
  const words = ['the', 'meter', 'counts', 'tokens', 'and', 'cost', 'of', 'every', 'call', 'quickly'];
  const synthetic = () =>
    fill(
      Array.from({ length: 5000 }, () => words[Math.floor(random() * words.length)] + ' '),
      MB,
    );

  const markdown = walk(nm, (p) => p.endsWith('.md') && !/CHANGELOG|LICENSE|HISTORY/i.test(p)).sort();
  const prose =
    markdown.length > 0
      ? fill(
          markdown.map((f) => `${readFileSync(f, 'utf8')}\n`),
          MB,
        )
      : synthetic();

  const tsJs = join(nm, 'typescript', 'lib', 'typescript.js');
  const code = existsSync(tsJs) ? clip(readFileSync(tsJs, 'utf8'), MB) : synthetic();

  const langs = ['zh-cn', 'zh-tw', 'ja', 'ko', 'de', 'fr', 'es', 'ru'];
  const diagnostics = langs
    .map((l) => join(nm, 'typescript', 'lib', l, 'diagnosticMessages.generated.json'))
    .filter((f) => existsSync(f));
  const json =
    diagnostics.length > 0
      ? fill(
          diagnostics.map((f) => readFileSync(f, 'utf8')),
          MB,
        )
      : synthetic();

  const cjkMessages = diagnostics
    .filter((f) => /zh-cn|zh-tw|ja|ko/.test(f))
    .map((f) => `${Object.values(JSON.parse(readFileSync(f, 'utf8'))).join('\n')}\n`);
  const cjk = cjkMessages.length > 0 ? fill(cjkMessages, MB) : synthetic();

  const emojis = ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🇯🇵', '❤️', '🔥', '🎉', '🚀', '🤖', '✨', '🏳️‍🌈', '👩🏿‍💻'];
  const emojiParts = [];
  for (let i = 0; i < 20_000; i++) {
    const r = random();
    if (r < 0.45) emojiParts.push(emojis[Math.floor(random() * emojis.length)]);
    else if (r < 0.75) emojiParts.push(' ');
    else emojiParts.push(words[Math.floor(random() * words.length)]);
  }
  const emoji = fill(emojiParts, MB);

  const bytes = Buffer.alloc(750_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  const base64 = clip(bytes.toString('base64'), MB);

  return { prose, code, json, cjk, emoji, base64 };
}

// ---------------------------------------------------------------- Python tiktoken

function python(code, env = {}, timeout = 120_000) {
  return spawnSync('python3', ['-c', code], { encoding: 'utf8', timeout, env: { ...process.env, ...env } });
}

/** { env } when Python tiktoken can load o200k_base, else { reason }. */
async function preparePythonTiktoken() {
  const probe = python('import tiktoken; print(tiktoken.__version__)');
  if (probe.status !== 0) return { reason: 'python3 tiktoken not importable' };
  const version = probe.stdout.trim();
  const cacheDir = join(OUT, 'tiktoken-cache');
  mkdirSync(cacheDir, { recursive: true });
  const env = { TIKTOKEN_CACHE_DIR: cacheDir };
  const cachePath = join(cacheDir, createHash('sha1').update(O200K_URL).digest('hex'));
  const marker = `${cachePath}.from-js-tiktoken`;
  if (!existsSync(cachePath)) {
    const ranks = (await import('js-tiktoken/ranks/o200k_base')).default.bpe_ranks;
    const lines = [];
    for (const line of ranks.split('\n')) {
      if (!line) continue;
      const [, offset, ...tokens] = line.split(' ');
      tokens.forEach((token, i) => {
        lines.push([Number(offset) + i, token]);
      });
    }
    lines.sort((a, b) => a[0] - b[0]);
    writeFileSync(cachePath, lines.map(([rank, token]) => `${token} ${rank}\n`).join(''));
    writeFileSync(marker, '');
  }
  const source = existsSync(marker) ? 'vocabulary rebuilt from js-tiktoken' : 'vocabulary as downloaded';
  const check = python("import tiktoken; tiktoken.get_encoding('o200k_base')", env);
  if (check.status !== 0) {
    return { reason: `tiktoken ${version} cannot load o200k_base: ${check.stderr.trim().split('\n').pop()}` };
  }
  return { env, label: `tiktoken ${version} (${source}; tiktoken verified its SHA-256)` };
}

// ---------------------------------------------------------------- child-process timing

function nodeChild(code, timeout = LIMIT_MS) {
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout,
  });
  return parseChild(r, performance.now() - started);
}

function pythonChild(code, env, timeout = LIMIT_MS) {
  const started = performance.now();
  const r = python(code, env, timeout);
  return parseChild(r, performance.now() - started);
}

function parseChild(r, wallMs) {
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGTERM') return { timedOut: true, wallMs };
  if (r.status !== 0) return { error: (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' '), wallMs };
  const last = r.stdout.trim().split('\n').pop();
  return { ...JSON.parse(last), wallMs };
}

const buildUrl = pathToFileURL(join(BUILD, 'tokens', 'index.js')).href;

const nodeFirstCall = {
  'gpt-tokenizer (encoding/o200k_base)': `const t = performance.now();
    const m = await import('gpt-tokenizer/encoding/o200k_base');
    const n = m.encode('hello world').length;
    console.log(JSON.stringify({ ms: performance.now() - t, n }));`,
  'llm-meter loadEncoding + countTokens': `const t = performance.now();
    const m = await import(${JSON.stringify(buildUrl)});
    const n = m.countTokens('hello world', await m.loadEncoding('o200k_base')).tokens;
    console.log(JSON.stringify({ ms: performance.now() - t, n }));`,
  'js-tiktoken (lite + ranks/o200k_base)': `const t = performance.now();
    const [{ Tiktoken }, ranks] = await Promise.all([import('js-tiktoken/lite'), import('js-tiktoken/ranks/o200k_base')]);
    const n = new Tiktoken(ranks.default).encode('hello world').length;
    console.log(JSON.stringify({ ms: performance.now() - t, n }));`,
  [`tiktoken WASM (npm tiktoken ${WASM_VERSION}, get_encoding)`]: `const t = performance.now();
    const { get_encoding } = await import('tiktoken');
    const e = get_encoding('o200k_base');
    const n = e.encode_ordinary('hello world').length;
    const ms = performance.now() - t;
    e.free();
    console.log(JSON.stringify({ ms, n }));`,
};

const pythonFirstCall = `import time, json
t = time.perf_counter()
import tiktoken
n = len(tiktoken.get_encoding('o200k_base').encode('hello world'))
print(json.dumps({'ms': (time.perf_counter() - t) * 1000, 'n': n}))`;

function hostileNode(kind, n) {
  const text = `'a'.repeat(${n})`;
  const body = {
    'gpt-tokenizer': `const m = await import('gpt-tokenizer/encoding/o200k_base');
      const t = performance.now(); const tokens = m.countTokens(${text});`,
    'llm-meter': `const m = await import(${JSON.stringify(buildUrl)}); const e = await m.loadEncoding('o200k_base');
      const t = performance.now(); const tokens = m.countTokens(${text}, e).tokens;`,
    'js-tiktoken': `const [{ Tiktoken }, ranks] = await Promise.all([import('js-tiktoken/lite'), import('js-tiktoken/ranks/o200k_base')]);
      const e = new Tiktoken(ranks.default); const t = performance.now(); const tokens = e.encode(${text}).length;`,
    'tiktoken WASM': `const { get_encoding } = await import('tiktoken'); const e = get_encoding('o200k_base');
      const t = performance.now(); const tokens = e.encode_ordinary(${text}).length;`,
  }[kind];
  return `${body} console.log(JSON.stringify({ ms: performance.now() - t, tokens }));`;
}

function hostilePython(n) {
  return `import time, json, tiktoken
e = tiktoken.get_encoding('o200k_base')
t = time.perf_counter()
tokens = len(e.encode_ordinary('a' * ${n}))
print(json.dumps({'ms': (time.perf_counter() - t) * 1000, 'tokens': tokens}))`;
}

// ---------------------------------------------------------------- formatting

const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fmtRate = (bytes, ms) => `${(bytes / MB / (ms / 1000)).toFixed(1)} MB/s`;

function cell(result) {
  if (result === undefined) return 'n/a';
  if (result.timedOut) return '> 10 s';
  if (result.error) return `error: ${result.error.slice(0, 60)}`;
  return fmtMs(result.ms);
}

function sameIds(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- main

const startedAt = performance.now();
function progress(step) {
  process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(1)} s] ${step}\n`);
}

async function main() {
  progress('compiling src/tokens');
  buildTokens();
  progress('preparing Python tiktoken');
  const py = await preparePythonTiktoken();
  progress('building corpora');
  const texts = corpora();
  progress('first calls');

  // First call, each in a fresh process; median of three.
  const median = (runs) => runs.sort((a, b) => a.ms - b.ms)[1];
  const firstRows = [];
  for (const [name, code] of Object.entries(nodeFirstCall)) {
    const runs = [0, 1, 2].map(() => nodeChild(code, 60_000));
    const bad = runs.find((r) => r.error || r.timedOut);
    const m = bad ?? median(runs);
    firstRows.push([name, cell(m), bad ? '' : fmtMs(m.wallMs)]);
  }
  if (py.env) {
    const runs = [0, 1, 2].map(() => pythonChild(pythonFirstCall, py.env, 60_000));
    const bad = runs.find((r) => r.error || r.timedOut);
    const m = bad ?? median(runs);
    firstRows.push([`Python ${py.label}`, cell(m), bad ? '' : fmtMs(m.wallMs)]);
  }

  progress('throughput');
  // Throughput, in this process. Each tokenizer sees each text once (a metered text is seen
  // once), after warming up on other text.
  const gpt = await import('gpt-tokenizer/encoding/o200k_base');
  const meter = await import(buildUrl);
  const meterEncoder = await meter.loadEncoding('o200k_base');
  const [{ Tiktoken }, ranks] = await Promise.all([
    import('js-tiktoken/lite'),
    import('js-tiktoken/ranks/o200k_base'),
  ]);
  const tiktokenJs = new Tiktoken(ranks.default);
  const { get_encoding } = await import('tiktoken');
  const tiktokenWasm = get_encoding('o200k_base');
  const plain = { disallowedSpecial: new Set() };
  const warm = 'Warm up the tokenizers on something else first. '.repeat(2000);
  gpt.encode(warm, plain);
  meter.countTokens(warm, meterEncoder);
  tiktokenJs.encode(warm, [], []);
  tiktokenWasm.encode_ordinary(warm);

  const time = (fn) => {
    const t = performance.now();
    const value = fn();
    return { ms: performance.now() - t, value };
  };

  let pyResults = {};
  if (py.env) {
    const files = {};
    for (const [name, text] of Object.entries(texts)) {
      files[name] = join(OUT, `corpus-${name}.txt`);
      writeFileSync(files[name], text);
    }
    const r = pythonChild(
      `import time, json, tiktoken
e = tiktoken.get_encoding('o200k_base')
e.encode_ordinary('warm up ' * 1000)
out = {}
for name, path in json.loads(${JSON.stringify(JSON.stringify(files))}).items():
    text = open(path, encoding='utf-8', newline='').read()
    t = time.perf_counter()
    ids = e.encode_ordinary(text)
    out[name] = {'ms': (time.perf_counter() - t) * 1000, 'tokens': len(ids)}
print(json.dumps(out))`,
      py.env,
      300_000,
    );
    pyResults = r.error || r.timedOut ? {} : r;
  }

  const throughputRows = [];
  for (const [name, text] of Object.entries(texts)) {
    const bytes = Buffer.byteLength(text);
    const a = time(() => gpt.encode(text, plain));
    const c = time(() => meter.countTokens(text, meterEncoder).tokens);
    const d = time(() => tiktokenJs.encode(text, [], []));
    const w = time(() => tiktokenWasm.encode_ordinary(text));
    const p = pyResults[name];
    const off = c.value - a.value.length;
    throughputRows.push([
      name,
      `${(bytes / MB).toFixed(2)} MB`,
      String(a.value.length),
      fmtRate(bytes, a.ms),
      `${fmtRate(bytes, c.ms)}${off === 0 ? '' : ` (${off > 0 ? '+' : ''}${off})`}`,
      fmtRate(bytes, d.ms),
      fmtRate(bytes, w.ms),
      sameIds(a.value, d.value) ? 'yes' : 'NO',
      sameIds(a.value, w.value) ? 'yes' : 'NO',
      p
        ? `${fmtRate(bytes, p.ms)}, ${p.tokens === a.value.length ? 'same count' : `count ${p.tokens}`}`
        : 'n/a',
    ]);
  }
  tiktokenWasm.free();

  progress('long runs');
  // Long runs without a break, each in a fresh process, 10 s each.
  const hostileRows = [];
  for (const n of [50_000, 200_000]) {
    const row = [`${n.toLocaleString('en-US')} × "a"`];
    for (const kind of ['gpt-tokenizer', 'llm-meter', 'js-tiktoken', 'tiktoken WASM'])
      row.push(cell(nodeChild(hostileNode(kind, n))));
    row.push(py.env ? cell(pythonChild(hostilePython(n), py.env)) : 'n/a');
    hostileRows.push(row);
  }

  console.log(`# Tokenizers, o200k_base (Node ${process.version}, ${process.platform}/${process.arch})\n`);
  console.log(`Python: ${py.label ?? py.reason}\n`);
  console.log('## First call (import + first encode), fresh process, median of 3\n');
  console.log(table(['tokenizer', 'in process', 'process wall time'], firstRows));
  console.log('\n## Throughput (each text encoded once, after a warm-up on other text)\n');
  console.log(
    table(
      [
        'text',
        'size',
        'tokens',
        'gpt-tokenizer',
        'llm-meter countTokens',
        'js-tiktoken',
        'tiktoken WASM',
        'ids gpt-tokenizer = js-tiktoken',
        'ids gpt-tokenizer = tiktoken WASM',
        'Python tiktoken',
      ],
      throughputRows,
    ),
  );
  console.log(
    '\nllm-meter countTokens is gpt-tokenizer behind its bounded splitting, with the merge cache ' +
      'cleared every 32 Ki characters (src/tokens); a count that differs from the exact one is ' +
      'shown in brackets. cjk is 0.69 MB of unique text repeated to 1 MB; emoji draws on 12 emoji ' +
      'and 10 words; base64 is random bytes. tiktoken WASM is the npm tiktoken package ' +
      `${WASM_VERSION} (WebAssembly bindings to OpenAI's Rust tiktoken), called through ` +
      "encode_ordinary; Python tiktoken's count is compared with gpt-tokenizer's.",
  );
  console.log('\n## Long runs without a break, fresh process, 10 s limit\n');
  console.log(
    table(
      ['input', 'gpt-tokenizer', 'llm-meter countTokens', 'js-tiktoken', 'tiktoken WASM', 'Python tiktoken'],
      hostileRows,
    ),
  );
}

await main();
