/**
 * The real OpenTelemetry Collector, with this very otel-collector.yaml, between llm-meter and a
 * real Jaeger v2:
 *
 *   meter ──OTLP/HTTP──▶ collector (otel-collector.yaml) ──OTLP/gRPC──▶ Jaeger v2 (in memory)
 *                             └── span_metrics ──▶ prometheus exporter ◀── scraped here
 *
 * Both binaries are built from source by .ci/build-collector.sh (the collector with the official
 * Collector Builder from deploy/collector/builder-config.yaml, Jaeger with `go build` of its
 * cmd/jaeger) into the git-ignored .cache/. Where one is missing (no Go on the machine), the
 * tests that need it are skipped, saying so; nothing here is a stand-in.
 *
 * Every address in the config comes from an environment variable, so the test runs the file
 * unchanged on free loopback ports.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, createMeter } from '../../src/index.js';
import { nanosToUsd } from '../../src/record.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { setupTelemetry } from '../../src/telemetry/setup.js';
import { TEST_PRICES } from '../helpers/harness.js';

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const OTELCOL = root('.cache/otelcol/otelcol-llm-meter');
const JAEGER = root('.cache/jaeger/jaeger');
const CONFIG = root('otel-collector.yaml');
const MANIFEST = root('deploy/collector/builder-config.yaml');
const JAEGER_CONFIG = root('deploy/collector/jaeger-v2.yaml');

const haveCollector = existsSync(OTELCOL);
const haveJaeger = existsSync(JAEGER);
const BUILD_HINT = 'run `bash .ci/build-collector.sh` (needs Go and its module proxy)';
/** The reason a test is skipped, in its name, or nothing. */
const missing = (needJaeger: boolean): string => {
  const absent = [!haveCollector && OTELCOL, needJaeger && !haveJaeger && JAEGER].filter(Boolean);
  return absent.length > 0 ? ` (skipped: no ${absent.join(' and no ')}; ${BUILD_HINT})` : '';
};
if (!haveCollector)
  console.warn(`[collector.test] SKIPPED: no collector binary at ${OTELCOL}; ${BUILD_HINT}`);
if (!haveJaeger)
  console.warn(`[collector.test] SKIPPED (Jaeger part): no Jaeger binary at ${JAEGER}; ${BUILD_HINT}`);

const SERVICE = 'llm-meter-collector-test';

// ---------------------------------------------------------------------------------------------
// Processes

/** `n` distinct free loopback ports: all held open together, then released. */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.on('error', reject);
          server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            if (typeof address === 'object' && address) resolve(address.port);
            else reject(new Error('no port'));
          });
        }),
    ),
  );
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

interface Proc {
  name: string;
  child: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

/** Starts an OpenTelemetry-Collector-based binary and waits for "Everything is ready". */
async function startProcess(
  name: string,
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Proc> {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tail = () => output.split('\n').slice(-40).join('\n');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready after 30 s:\n${tail()}`)), 30_000);
    const check = () => {
      if (output.includes('Everything is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${tail()}`));
    });
  });
  return {
    name,
    child,
    log: tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it returns a value (not undefined), or fails with `what` and the logs. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  logs: () => string,
): Promise<T> {
  const deadline = Date.now() + 20_000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}\n${logs()}`);
}

// ---------------------------------------------------------------------------------------------
// OTLP JSON (what Jaeger's /api/v3 answers) and Prometheus text

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
};
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number | string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: AnyValue }[];
  status?: { code?: number | string; message?: string };
}
interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: AnyValue }[] };
    scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[];
  }[];
}

function plain(value: AnyValue | undefined): string | number | boolean | undefined {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  return value.boolValue;
}

function attrs(list: { key: string; value: AnyValue }[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, plain(a.value)]));
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition → samples (enough of the format for what the exporter writes). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------
// The run: one collector (and Jaeger, where built), two metered calls, shared by the tests.

const ports = {
  grpc: 0,
  http: 0,
  prom: 0,
  telemetry: 0,
  jaegerOtlp: 0,
  jaegerQuery: 0,
  jaegerQueryGrpc: 0,
  nowhere: 0,
};
let jaeger: Proc | null = null;
let collector: Proc | null = null;
let sim: Simulator;
const records: CallRecord[] = [];
const logs = () => [collector, jaeger].map((p) => (p ? `--- ${p.name}\n${p.log()}` : '')).join('\n');

/** The OK call (a provider-reported split, as Groq sends it) and the failed one. */
const okRecord = () => records.find((r) => r.outcome === 'ok')!;
const errorRecord = () => records.find((r) => r.outcome === 'error')!;

beforeAll(async () => {
  if (!haveCollector) return;
  const keys = Object.keys(ports) as (keyof typeof ports)[];
  const free = await freePorts(keys.length);
  keys.forEach((key, i) => {
    ports[key] = free[i]!;
  });

  if (haveJaeger) {
    jaeger = await startProcess('jaeger', JAEGER, ['--config', JAEGER_CONFIG], {
      JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.jaegerOtlp}`,
      JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${ports.jaegerQuery}`,
      JAEGER_QUERY_GRPC_ENDPOINT: `127.0.0.1:${ports.jaegerQueryGrpc}`,
    });
  }
  collector = await startProcess('collector', OTELCOL, ['--config', CONFIG], {
    OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.grpc}`,
    OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.http}`,
    PROMETHEUS_ENDPOINT: `127.0.0.1:${ports.prom}`,
    OTELCOL_TELEMETRY_HOST: '127.0.0.1',
    OTELCOL_TELEMETRY_PORT: String(ports.telemetry),
    // Without a Jaeger, a port nobody listens on: the metrics half of the test still runs.
    JAEGER_ENDPOINT: `127.0.0.1:${haveJaeger ? ports.jaegerOtlp : ports.nowhere}`,
    SPANMETRICS_FLUSH_INTERVAL: '500ms',
  });

  // The meter exports the way the CLI does: OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT.
  sim = await startSimulator();
  const telemetry = setupTelemetry({
    serviceName: SERVICE,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${ports.http}` },
    quiet: true,
  });
  const meter = createMeter({
    database: false,
    prices: TEST_PRICES,
    tracerProvider: telemetry.tracerProvider,
    meterProvider: telemetry.meterProvider,
    onRecord: (r) => records.push(r),
  });
  const openai = new OpenAI({
    baseURL: `${sim.url}/v1`,
    apiKey: 'sk-test-openai-key',
    fetch: meter.fetch,
    maxRetries: 0,
  });
  try {
    sim.setDefaults({ report: 'groq', queueMs: 23, prefillMsPerToken: 0.25, msPerToken: 3, outputTokens: 8 });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Tell me about the quick brown fox.' }],
      stream: true,
    });
    for await (const _ of stream);
    sim.enqueue({ fault: 'server_error' });
    await openai.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'And the lazy dog?' }] })
      .then(
        () => expect.fail('the simulator was told to fail this call'),
        () => undefined,
      );
    await meter.flush();
  } finally {
    await meter.shutdown();
    await telemetry.shutdown(); // flushes the batch span processor to the collector
    await sim.close();
  }
  expect(records.map((r) => r.outcome).sort()).toEqual(['error', 'ok']);
});

afterAll(async () => {
  await collector?.stop();
  await jaeger?.stop();
});

describe('otel-collector.yaml on a collector built with the OpenTelemetry Collector Builder', () => {
  it.skipIf(!haveCollector)(`the binary has exactly the components the config uses${missing(false)}`, () => {
    // What the config uses: the component types named under each top-level section.
    const used = new Set<string>();
    let section = '';
    for (const line of readFileSync(CONFIG, 'utf8').split('\n')) {
      const top = /^([a-z_]+):/.exec(line);
      if (top) section = top[1]!;
      const key = /^ {2}([a-z_]+)(?:\/[\w-]+)?:/.exec(line);
      if (key && ['receivers', 'processors', 'exporters', 'connectors', 'extensions'].includes(section)) {
        used.add(`${section}/${key[1]}`);
      }
    }
    // What the binary has, with the Go module each comes from.
    const out = execFileSync(OTELCOL, ['components'], { encoding: 'utf8' });
    const built = new Map<string, string>();
    section = '';
    let name = '';
    for (const line of out.split('\n')) {
      const top = /^([a-z_]+):/.exec(line);
      if (top) section = top[1]!;
      const n = /^ {4}- (?:name|scheme): (\S+)/.exec(line);
      if (n) name = n[1]!;
      const mod = /^ {6}module: (\S+ \S+)/.exec(line);
      if (mod) built.set(`${section}/${name}`, mod[1]!);
    }
    const components = [...built.keys()].filter((k) => !k.startsWith('providers/')).sort();
    expect([...built.keys()].filter((k) => k.startsWith('providers/')).sort(), 'config providers').toEqual([
      'providers/env',
      'providers/file',
    ]);
    expect(components, 'components in the binary = components the config uses').toEqual([...used].sort());
    // And the manifest names exactly those modules (plus the config providers).
    const manifest = [...readFileSync(MANIFEST, 'utf8').matchAll(/- gomod: (\S+ \S+)/g)].map((m) => m[1]!);
    expect(manifest.sort(), 'modules in the manifest = modules in the binary').toEqual(
      [...built.values()].sort(),
    );
  });

  it.skipIf(!haveCollector)(
    `the config validates with its defaults (the compose addresses)${missing(false)}`,
    () => {
      const env = { ...process.env };
      for (const k of [
        'OTLP_GRPC_ENDPOINT',
        'OTLP_HTTP_ENDPOINT',
        'PROMETHEUS_ENDPOINT',
        'JAEGER_ENDPOINT',
      ]) {
        delete env[k];
      }
      expect(() =>
        execFileSync(OTELCOL, ['validate', '--config', CONFIG], { env, stdio: 'pipe' }),
      ).not.toThrow();
    },
  );

  it.skipIf(!haveCollector || !haveJaeger)(
    `the spans of a metered call reach Jaeger v2 through the collector, children and attributes intact${missing(true)}`,
    async () => {
      const ok = okRecord();
      const traceId = ok.traceId!;
      const url = `http://127.0.0.1:${ports.jaegerQuery}/api/v3/traces/${traceId}`;
      // Wait for all four spans: the batch processor may deliver them in more than one export.
      const spans = await eventually(
        `trace ${traceId} with 4 spans in Jaeger`,
        async () => {
          const res = await fetch(url);
          if (res.status !== 200) return undefined;
          const body = (await res.json()) as { result?: OtlpTraces };
          const found = (body.result?.resourceSpans ?? []).flatMap((rs) =>
            (rs.scopeSpans ?? []).flatMap((ss) =>
              (ss.spans ?? []).map((s) => ({
                ...s,
                resource: attrs(rs.resource?.attributes),
                scope: ss.scope?.name,
              })),
            ),
          );
          return found.length >= 4 ? found : undefined;
        },
        logs,
      );
      expect(spans, 'the LLM span and its three phases, nothing else').toHaveLength(4);

      const llm = spans.find((s) => s.spanId === ok.spanId);
      expect(llm, 'the LLM span, by the span id the record carries').toBeDefined();
      expect(llm!.traceId).toBe(traceId);
      expect(llm!.name).toBe('chat gpt-4o-mini');
      expect([3, 'SPAN_KIND_CLIENT'], 'span kind CLIENT').toContain(llm!.kind);
      expect(llm!.parentSpanId ?? '', 'a root span').toBe('');
      expect(llm!.resource['service.name']).toBe(SERVICE);
      expect(llm!.scope).toBe('llm-meter');
      const a = attrs(llm!.attributes);
      expect(a['gen_ai.operation.name']).toBe('chat');
      expect(a['gen_ai.provider.name']).toBe(ok.provider);
      expect(a['gen_ai.request.model']).toBe('gpt-4o-mini');
      expect(a['gen_ai.response.model']).toBe(ok.responseModel);
      expect(a['gen_ai.request.stream']).toBe(true);
      expect(a['gen_ai.usage.input_tokens']).toBe(ok.usage!.inputTokens);
      expect(a['gen_ai.usage.output_tokens']).toBe(ok.usage!.outputTokens);
      expect(a['gen_ai.usage.input_tokens'], 'tokens were counted').toBeGreaterThan(0);
      expect(a['gen_ai.usage.cost'], 'cost, USD').toBe(nanosToUsd(ok.cost.totalNanos));
      expect(a['gen_ai.usage.cost'], 'a priced call').toBeGreaterThan(0);
      expect(a['gen_ai.response.time_to_first_chunk']).toBeCloseTo(ok.timing.timeToFirstTokenMs! / 1000, 9);
      expect(a['llm_meter.queue.source']).toBe('provider');
      expect(a['llm_meter.prefill.source']).toBe('provider');
      expect(a['llm_meter.call.id']).toBe(ok.id);
      expect(JSON.stringify(spans), 'no credential left the process').not.toContain('sk-test-openai-key');

      const nanos = (v: string) => BigInt(v);
      const durationMs = (s: OtlpSpan) => Number(nanos(s.endTimeUnixNano) - nanos(s.startTimeUnixNano)) / 1e6;
      const phases: [string, number][] = [
        ['queue', ok.timing.queue!.ms],
        ['prefill', ok.timing.prefill!.ms],
        ['generation', ok.timing.generation!.ms],
      ];
      for (const [name, ms] of phases) {
        const span = spans.find((s) => s.name === name);
        expect(span, `${name} span`).toBeDefined();
        expect(span!.traceId, `${name} in the trace`).toBe(traceId);
        expect(span!.parentSpanId, `${name} is a child of the LLM span`).toBe(llm!.spanId);
        expect([1, 'SPAN_KIND_INTERNAL'], `${name} kind INTERNAL`).toContain(span!.kind);
        expect(attrs(span!.attributes)['llm_meter.source'], `${name} llm_meter.source`).toBe('provider');
        // Nanosecond timestamps survive the trip: the figure Groq reported, to the microsecond.
        expect(durationMs(span!), `${name} duration`).toBeCloseTo(ms, 3);
        expect(nanos(span!.startTimeUnixNano) >= nanos(llm!.startTimeUnixNano), `${name} inside`).toBe(true);
        expect(nanos(span!.endTimeUnixNano) <= nanos(llm!.endTimeUnixNano), `${name} inside`).toBe(true);
      }
      // The waterfall: queue ends where prefill starts.
      const queue = spans.find((s) => s.name === 'queue')!;
      const prefill = spans.find((s) => s.name === 'prefill')!;
      expect(Number(nanos(prefill.startTimeUnixNano) - nanos(queue.endTimeUnixNano)) / 1e6).toBeCloseTo(0, 3);

      // The failed call is there too, as an error span with its error class.
      const failed = errorRecord();
      const res = await eventually(
        `trace ${failed.traceId} in Jaeger`,
        async () => {
          const r = await fetch(`http://127.0.0.1:${ports.jaegerQuery}/api/v3/traces/${failed.traceId}`);
          return r.status === 200 ? ((await r.json()) as { result?: OtlpTraces }) : undefined;
        },
        logs,
      );
      const errorSpan = res.result?.resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.find(
        (s) => s.spanId === failed.spanId,
      );
      expect(errorSpan, 'the failed call span').toBeDefined();
      expect(attrs(errorSpan!.attributes)['error.type']).toBe(failed.errorType);
      expect([2, 'STATUS_CODE_ERROR'], 'span status ERROR').toContain(errorSpan!.status?.code);
    },
  );

  it.skipIf(!haveCollector)(
    `span_metrics derives request, error and duration metrics per model, on the Prometheus exporter${missing(false)}`,
    async () => {
      const ok = okRecord();
      const failed = errorRecord();
      const find = (samples: Sample[], name: string, labels: Record<string, string>) =>
        samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      // span_metrics reports a new counter series as 0 at its first flush (so that Prometheus'
      // increase() sees the first call), and its count from the next flush on: wait for the
      // five series of our spans (two calls, three phases) to have counted their span.
      const samples = await eventually(
        'span_metrics series for both models and the phases on the Prometheus exporter',
        async () => {
          const res = await fetch(`http://127.0.0.1:${ports.prom}/metrics`);
          const all = parseExposition(await res.text());
          const calls = find(all, 'traces_span_metrics_calls_total', { service_name: SERVICE });
          return calls.length === 5 && calls.every((s) => s.value > 0) ? all : undefined;
        },
        logs,
      );

      const okLabels = {
        service_name: SERVICE,
        span_name: 'chat gpt-4o-mini',
        span_kind: 'SPAN_KIND_CLIENT',
        gen_ai_request_model: 'gpt-4o-mini',
        gen_ai_provider_name: ok.provider,
      };
      // Requests: one OK call of gpt-4o-mini, with no error class.
      const requests = find(samples, 'traces_span_metrics_calls_total', okLabels);
      expect(requests, 'one series of requests for gpt-4o-mini').toHaveLength(1);
      expect(requests[0]!.value).toBe(1);
      expect(requests[0]!.labels.status_code).toBe('STATUS_CODE_UNSET');
      expect(requests[0]!.labels.error_type, 'no error class on a success').toBeUndefined();

      // Errors: the failed gpt-4o call, by error class.
      const errors = find(samples, 'traces_span_metrics_calls_total', {
        gen_ai_request_model: 'gpt-4o',
        gen_ai_provider_name: failed.provider,
        status_code: 'STATUS_CODE_ERROR',
        error_type: failed.errorType!,
      });
      expect(errors, 'one series of errors for gpt-4o, with its error class').toHaveLength(1);
      expect(errors[0]!.value).toBe(1);

      // Duration: a histogram per model, whose one observation is the call's duration.
      const count = find(samples, 'traces_span_metrics_duration_milliseconds_count', okLabels);
      const sum = find(samples, 'traces_span_metrics_duration_milliseconds_sum', okLabels);
      expect(count.map((s) => s.value)).toEqual([1]);
      const spanMs = ok.timing.endMs - ok.timing.startMs;
      expect(sum[0]!.value, 'the histogram holds the span duration').toBeCloseTo(spanMs, 0);
      const buckets = find(samples, 'traces_span_metrics_duration_milliseconds_bucket', okLabels);
      expect(buckets.length, 'the configured buckets, +Inf included').toBe(16);

      // The phase spans come out per span name (they carry no model): the phase durations.
      for (const phase of ['queue', 'prefill', 'generation']) {
        const s = find(samples, 'traces_span_metrics_calls_total', {
          service_name: SERVICE,
          span_name: phase,
        });
        expect(
          s.map((x) => x.value),
          `${phase} calls`,
        ).toEqual([1]);
        expect(s[0]!.labels.gen_ai_request_model, `${phase} has no model`).toBeUndefined();
      }
    },
  );
});
