#!/usr/bin/env node
// The gateway against direct calls, side by side in one run: what `llm-meter proxy` adds.
//
//   npm run build && node bench/gateway.mjs [--rates=100,1000] [--duration=8] [--warmup=1.5]
//     [--rounds=2] [--litellm=/path/to/litellm | --litellm=none] [--nostore=false]
//
// The simulator (non-streaming chat completions, 16 output tokens, no delays) runs in one child
// process, the gateway (`startProxy` with a SQLite store, spans and metrics through batch
// processors to no-op exporters) in another, the same gateway without a store in a third
// (unless --nostore=false), LiteLLM's proxy (when its `litellm` command is
// found: `pip install 'litellm[proxy]'`) in a fourth, pointed at the same simulator. This process
// is the load generator: an open loop paced at the target rate over an undici Pool per target
// (keep-alive), so a slow target does not slow the schedule (no coordinated omission); calls past
// 512 in flight are counted as skipped instead of sent. Latency is send → whole body read.
// Targets alternate order per round; each round warms up before it measures; latencies of all
// rounds are pooled. Added latency = target quantile − direct quantile at the same rate.
// RSS is the peak of the target's process tree, sampled every 200 ms from /proc; CPU is the
// target's user+system time per completed call. Figures go to stdout as a Markdown table and to
// bench/out/gateway.md. Never assertions: this machine's numbers.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { jsonChild } from './lib/child.mjs';
import { alternate } from './lib/rounds.mjs';
import { fmt, parseArgs, sortedQuantile as quantile } from './lib/stats.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = parseArgs();
const RATES = (args.rates ?? '100,1000').split(',').map(Number);
const DURATION_MS = Number(args.duration ?? 8) * 1000;
const WARMUP_MS = Number(args.warmup ?? 1.5) * 1000;
const ROUNDS = Number(args.rounds ?? 2);
const MAX_IN_FLIGHT = 512;
const log = (...a) => console.error(...a);

// Not fmtSigned: a difference that rounds to zero keeps its sign (+0.00), as this table has always shown.
const signed = (n, digits) =>
  Number.isFinite(n) ? (n >= 0 ? `+${fmt(n, digits)}` : `−${fmt(-n, digits)}`) : '–';

// --- processes --------------------------------------------------------------------------------
const children = [];
function child(command, argv) {
  const c = jsonChild(command, argv);
  children.push(c.proc);
  return c;
}
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill();
});

const tmp = mkdtempSync(join(tmpdir(), 'llm-meter-gateway-bench-'));
const simProc = child(process.execPath, [join(ROOT, 'bench', 'gateway-server.mjs'), 'sim']);
const sim = await simProc.next();
const gwProc = child(process.execPath, [
  join(ROOT, 'bench', 'gateway-server.mjs'),
  'gateway',
  sim.url,
  join(tmp, 'usage.db'),
]);
const gateway = await gwProc.next();
// The same gateway without a store: what the SQLite sink costs, apart from the proxy and metering.
const bareProc =
  args.nostore === 'false'
    ? null
    : child(process.execPath, [join(ROOT, 'bench', 'gateway-server.mjs'), 'gateway', sim.url, 'none']);
const bare = bareProc ? await bareProc.next() : null;

const MASTER_KEY = 'sk-litellm-bench-master-key-0123456789';
function findLitellm() {
  if (args.litellm === 'none') return null;
  const candidates = [args.litellm, '/tmp/litellm-venv/bin/litellm', 'litellm'].filter(Boolean);
  for (const c of candidates) {
    if (c.includes('/') ? existsSync(c) : spawnSync('which', [c]).status === 0) return c;
  }
  return null;
}
let litellm = null;
let litellmNote = null;
const litellmBin = findLitellm();
if (litellmBin) {
  const version = spawnSync(litellmBin.replace(/litellm$/, 'pip'), ['show', 'litellm'], {
    encoding: 'utf8',
  }).stdout?.match(/^Version: (.+)$/m)?.[1];
  const port = 40_000 + Math.floor(Math.random() * 10_000);
  const config = join(tmp, 'litellm.yaml');
  writeFileSync(
    config,
    [
      'model_list:',
      '  - model_name: gpt-4o-mini',
      '    litellm_params:',
      '      model: openai/gpt-4o-mini',
      `      api_base: ${sim.url}/v1`,
      '      api_key: sk-bench',
      'litellm_settings:',
      '  drop_params: true',
      '',
    ].join('\n'),
  );
  const proc = spawn(litellmBin, ['--config', config, '--host', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, LITELLM_MASTER_KEY: MASTER_KEY, LITELLM_TELEMETRY: 'False', LITELLM_LOG: 'ERROR' },
  });
  children.push(proc);
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  for (;;) {
    if (proc.exitCode !== null) {
      litellmNote = `LiteLLM's proxy exited at start (code ${proc.exitCode}).`;
      break;
    }
    try {
      if ((await fetch(`${url}/health/liveliness`)).ok) {
        litellm = { url, pid: proc.pid, version };
        break;
      }
    } catch {
      // not up yet
    }
    if (performance.now() - started > 90_000) {
      litellmNote = 'LiteLLM did not become ready within 90 s.';
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
} else {
  litellmNote = "LiteLLM's `litellm` command was not found (pip install 'litellm[proxy]').";
}

// --- measurement helpers -----------------------------------------------------------------------
function tree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const kids = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
        if (kids) pids.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // gone
    }
  }
  return pids;
}
function rssMb(pid) {
  let kb = 0;
  for (const p of tree(pid)) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
function cpuMs(pid) {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return (ticks * 1000) / TICKS;
}

const body = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Answer in one short paragraph.' },
    { role: 'user', content: 'What does the quick brown fox do over the lazy dog, and why does it matter?' },
  ],
  max_tokens: 64,
});

const targets = [
  { name: 'direct', url: sim.url, pid: sim.pid, key: 'sk-bench' },
  { name: 'llm-meter gateway (SQLite store)', url: gateway.url, pid: gateway.pid, key: 'sk-bench' },
];
if (bare)
  targets.push({ name: 'llm-meter gateway (no store)', url: bare.url, pid: bare.pid, key: 'sk-bench' });
if (litellm)
  targets.push({
    name: `LiteLLM proxy ${litellm.version ?? ''}`.trim(),
    url: litellm.url,
    pid: litellm.pid,
    key: MASTER_KEY,
  });
for (const t of targets) {
  t.pool = new Pool(t.url, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
  t.headers = { 'content-type': 'application/json', authorization: `Bearer ${t.key}` };
}

/** An open loop at `rate` for `ms`: each call's latency (send → body read), errors, skips. */
function load(t, rate, ms) {
  const total = Math.round((rate * ms) / 1000);
  const interval = 1000 / rate;
  const latencies = [];
  const out = { latencies, sent: 0, ok: 0, non2xx: 0, errors: 0, skipped: 0, lagMs: [] };
  let inFlight = 0;
  let issued = 0;
  const start = performance.now();
  return new Promise((resolve) => {
    const maybeDone = () => {
      if (issued === total && inFlight === 0) resolve({ ...out, elapsedMs: performance.now() - start });
    };
    const fire = (scheduled) => {
      const t0 = performance.now();
      out.lagMs.push(t0 - scheduled);
      inFlight++;
      out.sent++;
      t.pool
        .request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: t.headers,
          body,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        })
        .then(async (res) => {
          await res.body.text();
          if (res.statusCode === 200) {
            out.ok++;
            latencies.push(performance.now() - t0);
          } else out.non2xx++;
        })
        .catch(() => out.errors++)
        .finally(() => {
          inFlight--;
          maybeDone();
        });
    };
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - start) / interval) + 1);
      while (issued < due) {
        const scheduled = start + issued * interval;
        issued++;
        if (inFlight >= MAX_IN_FLIGHT) out.skipped++;
        else fire(scheduled);
      }
      if (issued < total) setTimeout(tick, Math.max(0, start + issued * interval - performance.now()));
      else maybeDone();
    };
    tick();
  });
}

async function phase(t, rate) {
  await load(t, rate, WARMUP_MS);
  let peak = rssMb(t.pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(t.pid));
  }, 200);
  const cpu0 = cpuMs(t.pid);
  const r = await load(t, rate, DURATION_MS);
  const cpu = cpuMs(t.pid) - cpu0;
  clearInterval(sampler);
  peak = Math.max(peak, rssMb(t.pid));
  return { ...r, peakRssMb: peak, cpuMs: cpu };
}

// --- run ----------------------------------------------------------------------------------------
log(`targets: ${targets.map((t) => t.name).join(', ')}${litellmNote ? ` (${litellmNote})` : ''}`);
const idleRss = Object.fromEntries(targets.map((t) => [t.name, rssMb(t.pid)]));
const results = new Map();
for (const rate of RATES) {
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of alternate(round, targets)) {
      log(`rate ${rate}/s, round ${round + 1}/${ROUNDS}: ${t.name}`);
      const r = await phase(t, rate);
      const key = `${rate}\u0000${t.name}`;
      const acc = results.get(key) ?? {
        latencies: [],
        lagMs: [],
        sent: 0,
        ok: 0,
        non2xx: 0,
        errors: 0,
        skipped: 0,
        elapsedMs: 0,
        peakRssMb: 0,
        cpuMs: 0,
      };
      acc.latencies.push(...r.latencies);
      acc.lagMs.push(...r.lagMs);
      for (const k of ['sent', 'ok', 'non2xx', 'errors', 'skipped', 'elapsedMs', 'cpuMs']) acc[k] += r[k];
      acc.peakRssMb = Math.max(acc.peakRssMb, r.peakRssMb);
      results.set(key, acc);
    }
  }
}

for (const t of targets) await t.pool.close();
simProc.proc.stdin.end();
gwProc.proc.stdin.end();
bareProc?.proc.stdin.end();
const [gwStats] = await Promise.all([gwProc.next(), simProc.next(), bareProc?.next()]);
for (const c of children) if (c.exitCode === null) c.kill();
rmSync(tmp, { recursive: true, force: true });

// --- report ---------------------------------------------------------------------------------------
const lines = [];
lines.push(
  `Gateway benchmark: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), ` +
    `${ROUNDS} rounds × ${DURATION_MS / 1000} s per target and rate (after ${WARMUP_MS / 1000} s warm-up), non-streaming chat completions, loopback.`,
);
lines.push('');
lines.push(
  '| rate (req/s) | target | p50 ms | p99 ms | added p50 ms | added p99 ms | throughput (req/s) | non-2xx / errors / skipped | CPU ms per call | RSS idle → peak (MB) |',
);
lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const rate of RATES) {
  const direct = results.get(`${rate}\u0000direct`);
  const dSorted = Float64Array.from(direct.latencies).sort();
  for (const t of targets) {
    const r = results.get(`${rate}\u0000${t.name}`);
    const s = Float64Array.from(r.latencies).sort();
    const p50 = quantile(s, 0.5);
    const p99 = quantile(s, 0.99);
    const isDirect = t.name === 'direct';
    lines.push(
      `| ${fmt(rate)} | ${t.name}${isDirect ? ' (the simulator)' : ''} | ${fmt(p50, 2)} | ${fmt(p99, 2)} | ` +
        `${isDirect ? '' : signed(p50 - quantile(dSorted, 0.5), 2)} | ${isDirect ? '' : signed(p99 - quantile(dSorted, 0.99), 2)} | ` +
        `${fmt((r.ok * 1000) / r.elapsedMs, 0)} | ${r.non2xx} / ${r.errors} / ${r.skipped} | ${fmt(r.cpuMs / Math.max(1, r.ok), 3)} | ` +
        `${fmt(idleRss[t.name], 0)} → ${fmt(r.peakRssMb, 0)} |`,
    );
  }
}
lines.push('');
const lag = [...results.values()].flatMap((r) => r.lagMs);
lines.push(
  `Load average (1, 5, 15 min) at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(', ')} (other processes share these cores). ` +
    `Load generator schedule lag p99: ${fmt(quantile(Float64Array.from(lag).sort(), 0.99), 2)} ms. ` +
    `Gateway at exit: ${gwStats.records} records metered, ${gwStats.store?.written ?? 0} rows written, ${gwStats.gatewayErrors} gateway errors. ` +
    `Goal (issue 7): added p50 ≤ 1 ms and p99 ≤ 5 ms at 1,000 req/s on 2 cores.`,
);
if (litellmNote) lines.push('', `LiteLLM: ${litellmNote}`);
const report = lines.join('\n');
console.log(report);
mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'out', 'gateway.md'), `${report}\n`);
process.exit(0);
