#!/usr/bin/env node
// Runs every benchmark and writes bench/RESULTS.md: the machine, versions and date, how to
// reproduce, then each section's tables with a short reading of them.
//
//   npm run build && node --expose-gc bench/run.mjs [--full] [--quick] [--repeat=N]
//     [--only=compare,profile,fetch,tokenizer,store,gateway] [--out=bench/RESULTS.md]
//
//   --full     the store's report latency at 10M rows too (adds a long bulk load)
//   --quick    smaller settings everywhere: a smoke test of the pipeline, not numbers to publish
//   --repeat   runs of the scripts that measure once (tokenizer; the store's write figures),
//              merged into median (min–max); default 1 (3 adds about 3 minutes)
//
// Each benchmark is its own script, run here as a child process, one at a time; its progress
// goes to stderr, its report (Markdown, or JSON with --json) comes back on stdout:
//
//   bench/compare.mjs    per-call overhead: raw fetch, undici instrumentation, OpenLLMetry on
//                        the openai client, llm-meter (telemetry only, default configuration,
//                        with an alert or a blocking budget), against the goals (JSON via --json)
//   bench/profile.mjs    where the microseconds go: a CPU profile of llm-meter's default
//                        configuration against raw fetch, per call, by bucket (JSON via --json)
//   bench/fetch.mjs      meter.fetch vs raw fetch in one process (Markdown)
//   bench/tokenizer.mjs  gpt-tokenizer vs js-tiktoken vs the WASM tiktoken vs Python tiktoken
//                        (Markdown)
//   bench/store.mjs      rows/s, hot-path cost, report latency at 1M (10M with --full) (text)
//   bench/gateway.mjs    direct vs gateway vs LiteLLM, when it exists
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, parseArgs, range, summarize, table } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const args = parseArgs();

// The memory figures need --expose-gc in the children (they get it); run.mjs itself does not, but
// re-executing keeps `node bench/run.mjs` and `node --expose-gc bench/run.mjs` the same.
if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', SELF, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}

const FULL = args.full === 'true';
const QUICK = args.quick === 'true';
const REPEAT = Math.max(1, Number(args.repeat ?? 1));
const ONLY = args.only ? new Set(args.only.split(',')) : null;
const OUT = join(ROOT, args.out ?? join('bench', 'RESULTS.md'));
const log = (...a) => console.error(...a);
const startedAt = new Date();

// --- load average, sampled through the run ---------------------------------------------------
const loadSamples = [];
const sampleLoad = () => loadSamples.push({ at: Date.now(), load: os.loadavg()[0] });
sampleLoad();
const loadTimer = setInterval(sampleLoad, 5_000);
loadTimer.unref();
const loadBetween = (from, to) => {
  const xs = loadSamples.filter((s) => s.at >= from && s.at <= to).map((s) => s.load);
  return xs.length ? summarize(xs) : summarize([os.loadavg()[0]]);
};

// --- children -------------------------------------------------------------------------------
function runScript(script, scriptArgs = [], { timeoutMs = 20 * 60_000, nodeArgs = ['--expose-gc'] } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    log(`\n[bench] node ${[...nodeArgs, script, ...scriptArgs].join(' ')}`);
    const child = spawn(process.execPath, [...nodeArgs, join(ROOT, script), ...scriptArgs], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = [];
    child.stdout.on('data', (c) => out.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      sampleLoad();
      const ended = Date.now();
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        ms: ended - started,
        load: loadBetween(started, ended),
        command: `node ${[...nodeArgs, script, ...scriptArgs].join(' ')}`,
      });
    });
  });
}

const supportsJson = (script) => {
  try {
    return /args\.json|['"]--json['"]/.test(readFileSync(join(ROOT, script), 'utf8'));
  } catch {
    return false;
  }
};

/** A child's report as Markdown: its own Markdown, or the `markdown` field of its JSON. */
function reportOf(result) {
  const text = result.stdout.trim();
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text.split('\n').pop());
      if (typeof json.markdown === 'string') return { markdown: json.markdown, json };
      return { markdown: `\`\`\`json\n${JSON.stringify(json, null, 2)}\n\`\`\``, json };
    } catch {}
  }
  return { markdown: text, json: null };
}

/** Headings pushed down `by` levels, so a script's "# Title" sits under this file's sections. */
const demote = (markdown, by = 2) =>
  markdown
    .split('\n')
    .map((line) => (/^#{1,5} /.test(line) ? `${'#'.repeat(by)}${line}` : line))
    .join('\n');

const failure = (r) =>
  `**Failed** (${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`} after ${fmt(r.ms / 1000)} s): \`${r.command}\`.${r.stdout.trim() ? `\n\n\`\`\`\n${r.stdout.trim().split('\n').slice(-20).join('\n')}\n\`\`\`` : ''}`;

// --- merging several runs of a script that measures once --------------------------------------
const NUM = /^([−-]?[\d,]*\.?\d+)\s*(.*)$/;
function parseCell(cell) {
  const m = NUM.exec(cell.trim());
  if (!m) return null;
  let value = Number(m[1].replace(/,/g, '').replace('−', '-'));
  let unit = m[2];
  // 1.20 s and 980 ms are the same unit.
  if (/^s\b/.test(unit)) {
    value *= 1000;
    unit = unit.replace(/^s\b/, 'ms');
  }
  return { value, unit, digits: (m[1].split('.')[1] ?? '').length };
}

/**
 * Markdown table cells from several runs of one script merged into "median (min–max) unit"
 * wherever every run's cell is a number with the same unit; text from the first run otherwise
 * (or every distinct value, when runs disagree). Runs whose shape differs are not merged.
 */
function mergeRuns(markdowns) {
  if (markdowns.length === 1) return markdowns[0];
  const split = markdowns.map((m) => m.split('\n'));
  if (split.some((lines) => lines.length !== split[0].length)) {
    return `${markdowns[0]}\n\n(${markdowns.length} runs differed in shape; the first is shown.)`;
  }
  return split[0]
    .map((line, i) => {
      if (!line.startsWith('|') || /^\|[\s:|-]+\|$/.test(line)) return line;
      const rows = split.map((lines) => lines[i].split('|').slice(1, -1));
      if (rows.some((r) => r.length !== rows[0].length)) return line;
      const cells = rows[0].map((_, c) => {
        const values = rows.map((r) => r[c].trim());
        if (values.every((v) => v === values[0])) return values[0];
        const parsed = values.map(parseCell);
        if (parsed.every((p) => p && p.unit === parsed[0].unit)) {
          const digits = Math.max(...parsed.map((p) => p.digits));
          const unit = parsed[0].unit ? ` ${parsed[0].unit}` : '';
          return range(
            parsed.map((p) => p.value),
            digits,
            { suffix: unit },
          );
        }
        return [...new Set(values)].join(' / ');
      });
      return `| ${cells.join(' | ')} |`;
    })
    .join('\n');
}

// --- the store's plain-text report as Markdown tables ---------------------------------------------
const FIGURE = /([\d,]*\.?\d+) (ms|µs\/call|rows\/s)/g;
function parseStore(text) {
  const sections = [];
  let current = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('# ')) continue;
    if (line.startsWith('## ')) {
      current = { title: line.slice(3), rows: [], notes: [] };
      sections.push(current);
      continue;
    }
    if (!current || !line.trim() || /^report\s+rollups\s+raw scan$/.test(line.trim())) continue;
    const figures = [...line.matchAll(FIGURE)];
    if (figures.length === 0 || /^loaded /.test(line)) {
      current.notes.push(line.trim());
      continue;
    }
    const label = line.slice(0, figures[0].index).trim();
    const last = figures[figures.length - 1];
    const note = line
      .slice(last.index + last[0].length)
      .trim()
      .replace(/^\((.*)\)$/, '$1');
    current.rows.push({
      label,
      values: figures.map((f) => ({
        value: Number(f[1].replace(/,/g, '')),
        unit: f[2],
        digits: (f[1].split('.')[1] ?? '').length,
      })),
      note,
    });
  }
  return sections;
}

/** Store runs (the first with reports, the rest write figures only) as Markdown. */
function storeMarkdown(texts) {
  const runs = texts.map(parseStore);
  const title =
    texts[0]
      .split('\n')
      .find((l) => l.startsWith('# '))
      ?.slice(2) ?? 'store benchmark';
  const out = [`${title}.`, ''];
  for (const section of runs[0]) {
    const isReport = /^Reports/.test(section.title);
    const same = runs.map((r) => r.find((s) => s.title === section.title)).filter(Boolean);
    out.push(
      `### ${section.title}${same.length > 1 ? ` (median (min–max) of ${same.length} runs)` : ''}`,
      '',
    );
    for (const note of section.notes) out.push(`${note}`, '');
    const merged = section.rows.map((row) => {
      const values = row.values.map((v, k) => {
        const xs = same
          .map((s) => s.rows.find((r) => r.label === row.label)?.values[k]?.value)
          .filter((x) => x !== undefined);
        return range(xs, v.digits, { suffix: ` ${v.unit}` });
      });
      return [row.label, ...values, row.note];
    });
    if (isReport) {
      out.push(
        table(
          ['report', 'with rollups', 'raw scan (no rollups)'],
          merged.map(([label, a, b]) => [label, a, b ?? '–']),
        ),
      );
    } else {
      out.push(
        table(
          ['figure', 'value', 'note'],
          merged.map(([label, a, ...rest]) => [label, a, rest.filter(Boolean).join('; ')]),
        ),
      );
    }
    out.push('');
  }
  return { markdown: out.join('\n'), sections: runs[0] };
}

// --- versions -----------------------------------------------------------------------------------
function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'not installed';
  }
}
function sh(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

// --- run -------------------------------------------------------------------------------------------
const want = (id) => !ONLY || ONLY.has(id);
const results = {};

/**
 * A script whose report is its section: JSON where it can give it, with `quickArgs` under --quick
 * and `always` in any case.
 */
async function runReport(script, quickArgs, timeoutMs, always = []) {
  const r = await runScript(
    script,
    [...(supportsJson(script) ? ['--json'] : []), ...always, ...(QUICK ? quickArgs : [])],
    { timeoutMs },
  );
  return { run: r, ...(r.code === 0 ? reportOf(r) : {}) };
}

if (want('compare')) {
  results.compare = await runReport(
    'bench/compare.mjs',
    ['--rounds=2', '--requests=300', '--sequential=60', '--chunks=150', '--mb=5'],
    30 * 60_000,
    // The budget goals need these two beside the default set.
    ['--with=meter-alert,meter-block'],
  );
}

if (want('profile')) {
  results.profile = await runReport('bench/profile.mjs', ['--quick'], 15 * 60_000);
}

if (want('fetch')) {
  results.fetch = await runReport(
    'bench/fetch.mjs',
    ['--rounds=2', '--requests=300', '--pairs=100', '--mb=10'],
    20 * 60_000,
  );
}

if (want('tokenizer')) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++)
    runs.push(await runScript('bench/tokenizer.mjs', [], { timeoutMs: 10 * 60_000, nodeArgs: [] }));
  const ok = runs.filter((r) => r.code === 0);
  results.tokenizer = {
    run: ok.length ? { ...ok[0], ms: runs.reduce((t, r) => t + r.ms, 0) } : runs[0],
    runs: ok.length,
    ...(ok.length ? { markdown: mergeRuns(ok.map((r) => reportOf(r).markdown)) } : {}),
  };
}

if (want('store')) {
  const main = await runScript(
    'bench/store.mjs',
    QUICK ? ['--rows=100000'] : FULL ? ['--big=10000000'] : [],
    { timeoutMs: (FULL ? 180 : 30) * 60_000, nodeArgs: [] },
  );
  const extra = [];
  if (main.code === 0) {
    for (let i = 1; i < REPEAT; i++)
      extra.push(await runScript('bench/store.mjs', ['--rows=0'], { timeoutMs: 10 * 60_000, nodeArgs: [] }));
  }
  const ok = [main, ...extra].filter((r) => r.code === 0);
  results.store = {
    run: { ...main, ms: [main, ...extra].reduce((t, r) => t + r.ms, 0) },
    ...(main.code === 0 ? storeMarkdown(ok.map((r) => r.stdout)) : {}),
  };
}

if (want('gateway') && existsSync(join(ROOT, 'bench', 'gateway.mjs'))) {
  results.gateway = await runReport(
    'bench/gateway.mjs',
    ['--rates=100', '--duration=3', '--warmup=1', '--rounds=1'],
    20 * 60_000,
  );
}
sampleLoad();
const endedAt = new Date();

// --- interpretation ------------------------------------------------------------------------------
const pick = (re, text) => (text ? re.exec(text)?.[1]?.trim() : undefined);

function compareReading(summary) {
  if (!summary) return [];
  const S = (id) => summary[id];
  const ok = (id) => S(id) && !S(id).failed && S(id).rate.n > 0;
  const lines = [];
  if (ok('meter-default')) {
    const d = S('meter-default');
    lines.push(
      `- At its default configuration (a SQLite file store, spans exported, no budgets) llm-meter adds ${range(d.addedLoopVsRawUs, 0, { signed: true })} µs of event-loop time and ${range(d.addedCpuVsRawUs, 0, { signed: true })} µs of process CPU per call over raw fetch, throughput ratio ${range(d.ratioVsRaw, 3)}${ok('meter') ? `; telemetry only, ${range(S('meter').addedLoopVsRawUs, 0, { signed: true })} µs of event-loop time` : ''}${ok('undici') ? `; a bare undici span, ${range(S('undici').addedLoopVsRawUs, 0, { signed: true })} µs` : ''}. The goal table above judges these; section 2 shows where the time goes.`,
    );
  }
  if (ok('meter') && ok('undici')) {
    lines.push(
      `- llm-meter with telemetry only adds ${range(S('meter').addedCpuUs, 0, { signed: true })} µs of client CPU per call over raw fetch, against ${range(S('undici').addedCpuUs, 0, { signed: true })} µs for a bare OpenTelemetry HTTP span (the undici floor)${ok('meter-full') ? `; with the SQLite store and two budgets (one of them blocking, so every call is token-counted before it is sent) ${range(S('meter-full').addedCpuUs, 0, { signed: true })} µs` : ''}. On loopback, where the whole call costs the raw client about ${fmt(S('raw').cpuUsPerCall.median)} µs of CPU, that is a throughput ratio of ${range(S('meter').ratioVsRaw, 3)}${ok('meter-full') ? ` (${range(S('meter-full').ratioVsRaw, 3)} with store and budgets)` : ''}; against a real provider, whose calls take hundreds of milliseconds, the same microseconds are well under 1% of a call.`,
    );
  }
  if (ok('openllmetry') && ok('openai-meter')) {
    lines.push(
      `- On the official openai client, OpenLLMetry adds ${range(S('openllmetry').addedCpuUs, 0, { signed: true })} µs CPU per call (throughput ratio ${range(S('openllmetry').ratioVsBaseline, 3)}) and llm-meter ${range(S('openai-meter').addedCpuUs, 0, { signed: true })} µs (ratio ${range(S('openai-meter').ratioVsBaseline, 3)}), both against the uninstrumented client in the same rounds. OpenLLMetry wraps one SDK method and parses nothing on the wire; llm-meter parses the HTTP body, prices the call and records metrics as well as the span, so it does more per call. The openai client itself costs ${range(S('openai').addedCpuUs, 0, { signed: true })} µs CPU per call over raw fetch.`,
    );
  }
  if (ok('meter') && ok('openllmetry')) {
    const mb = results.compare?.json?.meta?.mb;
    const noisy = (x) => (x.min < 0 && x.max > 0) || x.max - x.min > 1000;
    const p99s = [S('meter').addedStreamP99, S('openllmetry').addedStreamP99];
    lines.push(
      `- Streaming: the added per-chunk delay is ${range(S('meter').addedStreamP50, 0, { signed: true })} µs at p50 and ${range(S('meter').addedStreamP99, 0, { signed: true })} µs at p99 for llm-meter, ${range(S('openllmetry').addedStreamP50, 0, { signed: true })} / ${range(S('openllmetry').addedStreamP99, 0, { signed: true })} µs for OpenLLMetry. These are differences between quantiles of separate streams in separate processes${p99s.some(noisy) ? ', and the p99 differences swing across zero or by more than a millisecond between rounds: on this machine they are scheduler noise, not a property of either library (bench/fetch.mjs pairs chunks in one process for the tighter figure)' : ''}. Memory: while ${mb} MB stream through, llm-meter retains ${range(S('meter').retainedHeap, 1)} MiB of heap; OpenLLMetry retains ${range(S('openllmetry').retainedHeap, 1)} MiB, because by default it accumulates the whole completion for its span (and, with its default TRACELOOP_ENRICH_TOKENS=true, re-tokenizes it when the stream ends, synchronously: ${range(S('openllmetry').endMs, 0)} ms from the last chunk to the end of the stream, against ${range(S('openai').endMs, 1)} ms for the plain client and ${range(S('meter').endMs, 1)} ms for llm-meter); after the stream ended and its spans were flushed it still held ${range(S('openllmetry').afterHeap, 1)} MiB (the same every round, so not a per-call leak). ${mb} MB is an extreme completion, chosen to make growth visible; the cost scales with the completion's length.`,
    );
  }
  return lines;
}

function profileReading(json) {
  if (!json?.buckets) return [];
  const { subject, baseline } = json.meta;
  const top = (list, n) =>
    list
      .filter((b) => b.added > 0)
      .slice(0, n)
      .map((b) => `${b.name} ${fmt(b.added, 1)}`)
      .join(', ');
  const byCause = json.buckets
    .map((b) => ({ name: b.name, added: b.addedByCause.median }))
    .sort((x, y) => y.added - x.added);
  const fns = json.functions.map((f) => ({ name: `\`${f.key}\``, added: f.added }));
  return [
    `- ${subject} adds ${range(json.totals.busy.added, 0, { signed: true })} µs of profiled main-thread time per call over ${baseline} (${range(json.totals.loop.added, 0, { signed: true })} µs of event-loop time in the same window, with the profiler running). Charged to the llm-meter code that caused it, the most goes to: ${top(byCause, 4)} µs per call. The functions adding the most self time: ${top(fns, 3)} µs per call.`,
    '- A sampling profile attributes time statistically: a bucket under ~10 µs per call is within its noise. The table is for finding where a regression lives (compare it with the previous RESULTS.md), not for the totals, which bench/compare.mjs measures unprofiled.',
  ];
}

function fetchReading(markdown) {
  if (!markdown) return [];
  const ratio = pick(/throughput ratio \(metered \/ raw\) \| ([^|]+)\|/, markdown);
  const added = pick(/added per call, median µs \| ([^|]+)\|/, markdown);
  const slow = pick(/with 20 ms simulated server time[^|]*\| ([^|]+)\|/, markdown);
  const lines = [];
  if (ratio || added) {
    lines.push(
      `- In one process, meter.fetch over raw fetch (npm undici with a keep-alive Agent): throughput ratio ${ratio ?? '–'} at concurrency 16, ${added ?? '–'} µs added per call in sequential pairs${slow ? `; with 20 ms of simulated server time per call the ratio is ${slow}` : ''}. The pairs are measured side by side in one process, so this is the tightest figure for llm-meter's own cost; compare.mjs's separate processes add the OpenTelemetry context manager and propagator a real application has.`,
    );
  }
  lines.push(
    '- The per-chunk delay is paired chunk by chunk (the same server write to a raw and a metered consumer); its p99 and max are dominated by scheduling on this shared VM, and the memory rows show the retained heap staying flat however much is streamed. The pre-flight table is what a blocking budget or context-window check costs a call before it is sent.',
  );
  return lines;
}

function tokenizerReading(markdown) {
  if (!markdown) return [];
  const cellsOf = (l) =>
    l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  const lines = markdown.split('\n');
  const rows = lines.filter((l) => /^\| (prose|code|json|cjk|emoji|base64) \|/.test(l)).map(cellsOf);
  const first = lines
    .filter(
      (l) =>
        /^\| (gpt-tokenizer|llm-meter|js-tiktoken|tiktoken WASM|Python tiktoken)/.test(l) &&
        !l.includes(' × '),
    )
    .map((l) => cellsOf(l))
    .filter((c) => c.length === 3)
    .map(([name, inProcess]) => `${name.replace(/ \(.*$/, '')} ${inProcess}`);
  const longHeader = lines.find((l) => l.startsWith('| input |'));
  const longRow = lines.filter((l) => /^\| [\d,]+ × "a" \|/.test(l)).pop();
  const header = cellsOf(lines.find((l) => l.startsWith('| text |')) ?? '');
  const column = (name) => header.indexOf(name);
  const n = rows.length;

  // Token ids against gpt-tokenizer's, one column per other tokenizer.
  const SAME = 'ids gpt-tokenizer = ';
  const ids = header
    .filter((h) => h.startsWith(SAME))
    .map((h) => ({ name: h.slice(SAME.length), differ: rows.filter((c) => /NO/.test(c[column(h)])).length }));
  const agree = ['gpt-tokenizer', ...ids.filter((x) => x.differ === 0).map((x) => x.name)];
  const differ = ids.filter((x) => x.differ > 0);
  const pyCells = rows.map((c) => c[column('Python tiktoken')] ?? 'n/a');
  const pySame = pyCells.filter((c) => c.includes('same count')).length;
  const meterCol = header.findIndex((h) => h.startsWith('llm-meter'));
  const off = rows
    .filter((c) => meterCol > 0 && /\(([+−-]?\d+)\)/.test(c[meterCol] ?? ''))
    .map((c) => `${c[0]} (${/\(([+−-]?\d+)\)/.exec(c[meterCol])[1]})`);
  const out = [
    `- Counts, on ${n} texts (prose, code, JSON, CJK, emoji, base64): ${agree.length > 1 ? `${agree.slice(0, -1).join(', ')} and ${agree.at(-1)} produce identical token ids` : 'gpt-tokenizer is the reference'}${differ.map((x) => `; ${x.name}'s ids differ from gpt-tokenizer's on ${x.differ} of ${n}`).join('')}${pyCells.some((c) => c !== 'n/a') ? `; Python tiktoken's counts match gpt-tokenizer's on ${pySame} of ${n}` : '; Python tiktoken was not available'}. llm-meter's bounded count ${off.length ? `differs from the exact one on ${off.join(', ')} tokens, out of hundreds of thousands` : 'equals the exact one on every text'}.`,
  ];

  // Throughput: each tokenizer's lowest and highest MB/s over the texts, and which is fastest where.
  const rate = (cell) => (cell && / MB\/s/.test(cell) ? parseCell(cell)?.value : undefined);
  const tokenizers = header.filter(
    (h, i) => i >= 3 && !h.startsWith(SAME) && rows.some((c) => rate(c[i]) !== undefined),
  );
  if (tokenizers.length && n) {
    const rates = (name) => rows.map((c) => rate(c[column(name)])).filter((x) => x !== undefined);
    const inNode = tokenizers.filter((t) => !t.startsWith('Python'));
    const wins = new Map();
    for (const c of rows) {
      const best = inNode.reduce((a, b) => ((rate(c[column(b)]) ?? 0) > (rate(c[column(a)]) ?? 0) ? b : a));
      wins.set(best, [...(wins.get(best) ?? []), c[0]]);
    }
    out.push(
      `- Throughput, MB/s from the slowest to the fastest text (each text encoded once): ${tokenizers
        .map((t) => {
          const xs = rates(t);
          return `${t} ${fmt(Math.min(...xs), 1)}–${fmt(Math.max(...xs), 1)}`;
        })
        .join('; ')}. Fastest in Node: ${[...wins]
        .sort((a, b) => b[1].length - a[1].length)
        .map(([t, texts]) => `${t} on ${texts.length} of ${n} (${texts.join(', ')})`)
        .join('; ')}.`,
    );
  }
  if (first.length) {
    out.push(
      `- First count in a fresh process (import + encoder load + encode, in process): ${first.join('; ')}. A process pays this once, on its first pre-flight count.`,
    );
  }
  if (longHeader && longRow) {
    const names = cellsOf(longHeader).slice(1);
    const cells = cellsOf(longRow);
    out.push(
      `- Hostile input (${cells[0]} without a break, 10 s limit): ${names.map((name, i) => `${name} ${cells[i + 1]}`).join('; ')}. This is the case llm-meter's bounded splitting exists for: a pre-flight count must not stall the event loop on a pathological prompt.`,
    );
  }
  return out;
}

function storeReading(sections) {
  if (!sections) return [];
  const find = (title, label) =>
    sections.find((s) => s.title.startsWith(title))?.rows.find((r) => r.label.startsWith(label))?.values;
  const burst = find('Persistence', 'bursts of 1000');
  const enqueue = find('Hot path', 'write() call alone');
  const perTurn = find('Hot path', 'added per call, one call per turn');
  const model = find('Reports', 'all time, group_by=model');
  const worst = find('Reports', 'worst case');
  const lines = [];
  if (burst && enqueue) {
    lines.push(
      `- A call pays ${fmt(enqueue[0].value, 3)} µs to enqueue its row (write()); the commit runs later on the same event loop, batched (${fmt(burst[0].value)} rows/s in bursts of 1,000)${perTurn ? `, and when calls complete one per loop turn each commit costs ${fmt(perTurn[0].value, 1)} µs of event-loop time` : ''}. The SQLite commit, not the enqueue, is the store's real cost.`,
    );
  }
  if (model) {
    lines.push(
      `- Reports read rollups, not raw rows: group_by=model over all rows took ${fmt(model[0].value, 1)} ms against ${fmt(model[1]?.value)} ms for a raw scan${worst ? `; the worst case (per user per day in a non-UTC zone, served from hourly rollups) took ${fmt(worst[0].value)} ms against ${fmt(worst[1]?.value)} ms for a raw scan${worst[1] && worst[0].value >= worst[1].value ? ', so rollups do not help that query at this size' : ''}` : ''}. One run, each figure the script's median of 5 (raw scans: of 3); the bulk load is synthetic.`,
    );
  }
  return lines;
}

function gatewayReading(markdown) {
  if (!markdown) return [];
  const lines = markdown.split('\n');
  const headerAt = lines.findIndex((l) => l.startsWith('|') && l.includes('added p50'));
  const lead = [];
  if (headerAt >= 0) {
    const cells = (l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
    const header = cells(lines[headerAt]);
    const col = (name) => header.findIndex((h) => h.startsWith(name));
    const rows = [];
    for (let i = headerAt + 2; i < lines.length && lines[i].startsWith('|'); i++) rows.push(cells(lines[i]));
    const byRate = new Map();
    for (const r of rows) {
      if (!r[col('added p50')]) continue;
      const list = byRate.get(r[col('rate')]) ?? [];
      list.push(`${r[col('target')]} ${r[col('added p50')]} ms / ${r[col('added p99')]} ms`);
      byRate.set(r[col('rate')], list);
    }
    for (const [rate, list] of byRate)
      lead.push(`- At ${rate} req/s, added p50 / p99 over direct calls: ${list.join('; ')}.`);
  }
  lead.push(
    "- The script pools each target's latencies over its rounds (it does not report min–max per round). The load generator, the simulator and each target share this machine's CPUs, so at the higher rate a target that falls behind shows up as skipped calls and a p99 of hundreds of milliseconds or more.",
  );
  return lead;
}

// --- RESULTS.md --------------------------------------------------------------------------------------
const cpus = os.cpus();
const gitHead = sh('git', ['rev-parse', '--short', 'HEAD']);
const gitDirty = sh('git', ['status', '--porcelain'])?.split('\n').filter(Boolean).length;
const pythonTiktoken = sh('python3', ['-c', 'import tiktoken; print(tiktoken.__version__)']);
let sqlite = null;
try {
  const { default: Database } = await import('better-sqlite3');
  sqlite = new Database(':memory:').prepare('SELECT sqlite_version()').pluck().get();
} catch {}
const llmMeter = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const PACKAGES = [
  '@opentelemetry/api',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/context-async-hooks',
  '@opentelemetry/instrumentation',
  '@opentelemetry/instrumentation-undici',
  '@traceloop/node-server-sdk',
  '@traceloop/instrumentation-openai',
  'openai',
  'undici',
  'better-sqlite3',
  'gpt-tokenizer',
  'js-tiktoken',
  'tiktoken',
  '@pydantic/genai-prices',
  'express',
];

const load = loadBetween(startedAt.getTime(), endedAt.getTime());
const sectionTime = (r) => (r ? `${fmt(r.ms / 60_000, 1)} min; 1-min load average ${range(r.load, 1)}` : '');
const compareJson = results.compare?.json;
const summary = compareJson?.summary;

const md = [];
md.push('# llm-meter benchmark results', '');
md.push(
  `Generated by \`bench/run.mjs\` on ${startedAt.toISOString()} in ${fmt((endedAt - startedAt) / 60_000, 1)} min${QUICK ? ' (**--quick**: smoke-test settings, not figures to publish)' : ''}${FULL ? ' (--full)' : ''}. Every figure is measured on this machine in this run; comparisons are side by side (ratios or differences against a baseline measured in the same round), summarised as median (min–max) over rounds unless a section says otherwise.`,
  '',
);
md.push('## Machine and versions', '');
md.push(
  table(
    ['', ''],
    [
      ['date', startedAt.toISOString()],
      ['CPU', `${cpus.length} × ${cpus[0]?.model?.trim() ?? 'unknown'}`],
      ['memory', `${fmt(os.totalmem() / 2 ** 30, 1)} GiB`],
      ['OS', `${os.type()} ${os.release()} (${process.platform}/${process.arch})`],
      ['Node', `${process.version} (V8 ${process.versions.v8})`],
      ['SQLite', sqlite ?? '–'],
      ['Python tiktoken', pythonTiktoken ?? 'not installed'],
      [
        'llm-meter',
        `${llmMeter.version}${gitHead ? `, git ${gitHead}${gitDirty ? ` with ${gitDirty} uncommitted changes` : ''}` : ''}`,
      ],
      [
        'load average (1 min)',
        `${range(load, 2)} over the run, sampled every 5 s (${fmt(loadSamples[0]?.load, 2)} at the start); other work on the machine shares its ${cpus.length} CPUs`,
      ],
    ],
  ),
  '',
);
md.push(
  table(
    ['package', 'version'],
    PACKAGES.map((p) => [p, pkgVersion(p)]),
  ),
  '',
);

md.push('## How to reproduce', '');
md.push(
  '```sh',
  'npm ci && npm run bench            # build, then every section below (~15 min on 2 cores)',
  'npm run bench -- --full            # adds the store report latency at 10M rows (long)',
  'node --expose-gc bench/run.mjs --only=compare,profile   # a subset; --quick for a smoke test',
  '```',
  '',
  'Each section is also a script of its own (`bench/compare.mjs`, `bench/profile.mjs`, `bench/fetch.mjs`, `bench/tokenizer.mjs`, `bench/store.mjs`, `bench/gateway.mjs`) with its settings in its header comment. Run on an idle machine for figures to publish; this file records the load average it ran under.',
  '',
);

md.push('## Headline', '');
if (compareJson) {
  md.push(
    `Per-call cost of each approach against its baseline, measured in the same rounds (${compareJson.meta.rounds} rounds, median (min–max)):`,
    '',
  );
  const head = compareJson.markdown.split('### Headline')[1]?.split('\n###')[0]?.trim();
  md.push(head ?? '', '');
  const goals = compareJson.markdown.split('### Goals')[1]?.split('\n###')[0];
  if (goals) md.push(`### Goals${goals.trimEnd()}`, '');
  md.push(...compareReading(summary), '');
} else {
  md.push('The comparison did not run or failed; see below.', '');
}

md.push('## 1. Per-call overhead across approaches', '');
if (results.compare?.markdown) {
  md.push(`\`${results.compare.run.command}\`, ${sectionTime(results.compare.run)}.`, '');
  const body = results.compare.markdown.replace(/^## .*\n/, '').split('### Headline')[0];
  // Everything after the headline but the goal table, which the headline above already shows.
  const rest = results.compare.markdown
    .split('### Headline')[1]
    ?.split('\n###')
    .slice(1)
    .filter((part) => !part.startsWith(' Goals'))
    .join('\n###');
  md.push(body.trim(), '', `###${rest ?? ''}`.trim(), '');
  md.push(
    "**What this means.** Throughput at concurrency 16 on loopback is bound by the client process's CPU, so ratios there magnify per-call cost far beyond what a real provider round trip would show; the added CPU µs per call is the transferable figure. OpenLLMetry is configured as documented (`traceloop.initialize({ disableBatch: false, exporter, instrumentModules: { openAI: OpenAI }, silenceInitializationMessage: true })`, plus `traceloopSyncEnabled: false` so it does not poll api.traceloop.com); its defaults record prompts and completions in spans, llm-meter's do not. On a 2-vCPU VM shared with other work, single rounds swing widely: read the min–max, not only the median.",
    '',
  );
} else if (results.compare) md.push(failure(results.compare.run), '');
else md.push('Not run (`--only`).', '');

/** A section that is a script's own report, headings pushed down, then a reading of it. */
function reportSection(result, reading) {
  if (result?.markdown) {
    md.push(`\`${result.run.command}\`, ${sectionTime(result.run)}.`, '');
    md.push(demote(result.markdown), '');
    md.push('**What this means.**', '', ...reading(result.markdown), '');
  } else if (result) md.push(failure(result.run), '');
  else md.push('Not run (`--only`).', '');
}

md.push('## 2. Where the microseconds go', '');
if (results.profile?.markdown) {
  md.push(`\`${results.profile.run.command}\`, ${sectionTime(results.profile.run)}.`, '');
  md.push(results.profile.markdown.replace(/^## .*\n/, '').trim(), '');
  md.push('**What this means.**', '', ...profileReading(results.profile.json), '');
} else if (results.profile) md.push(failure(results.profile.run), '');
else md.push('Not run (`--only`).', '');

md.push('## 3. meter.fetch vs raw fetch, one process', '');
reportSection(results.fetch, fetchReading);

md.push('## 4. Tokenizers (pre-flight counting)', '');
if (results.tokenizer?.markdown) {
  md.push(
    `\`${results.tokenizer.run.command}\`, ${results.tokenizer.runs > 1 ? `${results.tokenizer.runs} runs merged cell by cell into median (min–max) where they differ` : 'one run (`--repeat=3` for median (min–max) of three)'}; ${sectionTime(results.tokenizer.run)}. Within a run, first calls are the median of 3 fresh processes; throughput encodes each text once, so single cells carry this machine's noise.`,
    '',
  );
  md.push(demote(results.tokenizer.markdown), '');
  md.push('**What this means.**', '', ...tokenizerReading(results.tokenizer.markdown), '');
} else if (results.tokenizer) md.push(failure(results.tokenizer.run), '');
else md.push('Not run (`--only`).', '');

md.push('## 5. Store', '');
if (results.store?.markdown) {
  md.push(
    `\`${results.store.run.command}\`${REPEAT > 1 ? ` (write figures: plus ${REPEAT - 1} run${REPEAT > 2 ? 's' : ''} with \`--rows=0\`)` : ''}, ${sectionTime(results.store.run)}.${FULL ? '' : ' Report latency at 10M rows only with `npm run bench -- --full`.'}`,
    '',
  );
  md.push(results.store.markdown, '');
  md.push('**What this means.**', '', ...storeReading(results.store.sections), '');
} else if (results.store) md.push(failure(results.store.run), '');
else md.push('Not run (`--only`).', '');

md.push('## 6. Gateway', '');
if (!results.gateway && want('gateway')) {
  md.push(
    '**TODO:** `bench/gateway.mjs` (direct vs llm-meter gateway vs LiteLLM at fixed request rates) did not exist when this ran; `bench/run.mjs` runs it automatically once it does.',
    '',
  );
} else reportSection(results.gateway, gatewayReading);

md.push('## Noise', '');
md.push(
  `This machine has ${cpus.length} vCPUs. The benchmarks keep a client process and a server process (the simulator) busy at once, about ${cpus.length} of load on their own; the 1-min load average over the run was ${range(load, 2)}${load.median > cpus.length + 0.5 ? ", so other work (other engineers' tests and builds) was competing for the same CPUs for much of it" : ''} (each section's own figure is given with it). Wall-clock figures (calls/s, latency, per-chunk delay) carry that noise; CPU time per call and retained memory carry much less of it. Figures to publish should come from an idle machine with \`npm run bench\`.`,
  '',
);

mkdirSync(join(ROOT, 'bench'), { recursive: true });
writeFileSync(
  OUT,
  `${md
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`,
);
log(`\n[bench] wrote ${OUT} (${fmt((endedAt - startedAt) / 60_000, 1)} min)`);
const failed = Object.entries(results).filter(([, r]) => r.run && r.run.code !== 0);
process.exit(failed.length ? 1 : 0);
