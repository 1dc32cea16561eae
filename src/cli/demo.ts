import { createMeter } from '../meter.js';
import type { CallRecord } from '../record.js';
import { startSimulator } from '../sim/index.js';
import { setupTelemetry } from '../telemetry/setup.js';
import { table } from './args.js';
import { printable } from './terminal.js';

export interface DemoCall {
  user: string;
  feature: string;
  path: string;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  sim?: Record<string, unknown>;
  /** Stop reading after this many bytes (a user closing the tab). */
  cancelAfterBytes?: number;
}

const users = ['alice', 'bob', 'carol'];
const features = ['triage', 'summarize', 'search'];
const prompt = (i: number) =>
  `Ticket ${i}: the customer says the quick brown fox jumped over the lazy dog ${i % 5} times. ${'Context. '.repeat(20 * (i % 4))}`;

/** A realistic mixed workload across providers, users and failure modes. */
export function workload(count: number): DemoCall[] {
  const calls: DemoCall[] = [];
  for (let i = 0; i < count; i++) {
    const user = users[i % users.length]!;
    const feature = features[i % features.length]!;
    const sim = {
      queueMs: i % 4 === 0 ? 120 : 5,
      prefillMsPerToken: 0.2,
      msPerToken: 4,
      outputTokens: 8 + (i % 7) * 4,
    };
    const kind = i % 6;
    if (kind === 0 || kind === 3) {
      calls.push({
        user,
        feature,
        path: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt(i) }] },
        sim,
      });
    } else if (kind === 1) {
      calls.push({
        user,
        feature,
        path: '/v1/messages',
        headers: { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-demo' },
        body: {
          model: 'claude-haiku-4-5',
          max_tokens: 256,
          stream: true,
          messages: [{ role: 'user', content: prompt(i) }],
        },
        sim: { ...sim, cacheReadTokens: 20 },
      });
    } else if (kind === 2) {
      calls.push({
        user,
        feature,
        path: '/v1/chat/completions',
        body: { model: 'gpt-4o', messages: [{ role: 'user', content: prompt(i) }], max_tokens: 200 },
        sim,
      });
    } else if (kind === 4) {
      calls.push({
        user,
        feature,
        path: '/v1/embeddings',
        body: { model: 'text-embedding-3-small', input: prompt(i) },
      });
    } else {
      calls.push({
        user,
        feature,
        path: '/v1/chat/completions',
        body: {
          model: 'llama-3.1-8b-instant',
          stream: true,
          messages: [{ role: 'user', content: prompt(i) }],
        },
        sim: { ...sim, report: 'groq' },
      });
    }
  }
  // The failures production sees.
  calls.push({
    user: 'bob',
    feature: 'triage',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    sim: { fault: 'rate_limit', retryAfterS: 2 },
  });
  calls.push({
    user: 'carol',
    feature: 'summarize',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt(3) }] },
    sim: { fault: 'cut_stream', faultAfterTokens: 5, msPerToken: 4 },
  });
  calls.push({
    user: 'alice',
    feature: 'search',
    path: '/v1/messages',
    headers: { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-demo' },
    body: { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
    sim: { fault: 'overloaded' },
  });
  calls.push({
    user: 'alice',
    feature: 'triage',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt(1) }] },
    sim: { msPerToken: 10, outputTokens: 60 },
    cancelAfterBytes: 600,
  });
  return calls;
}

/** Who the demo calls are made as: the project they are attributed to and the fake key they send. */
interface DemoCaller {
  project?: string;
  apiKey?: string;
}

/** One demo call through the meter; failures are the point, so nothing is thrown. */
export async function sendDemoCall(
  meter: Pick<ReturnType<typeof createMeter>, 'fetch' | 'run'>,
  simUrl: string,
  call: DemoCall,
  { project = 'demo', apiKey = 'sk-demo-not-a-real-key' }: DemoCaller = {},
): Promise<void> {
  await meter.run({ user: call.user, project, feature: call.feature }, async () => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      authorization: `Bearer ${apiKey}`,
      ...call.headers,
    };
    if (call.sim) headers['x-sim-options'] = JSON.stringify(call.sim);
    try {
      const res = await meter.fetch(`${simUrl}${call.path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(call.body),
      });
      if (call.cancelAfterBytes && res.body) {
        const reader = res.body.getReader();
        let seen = 0;
        while (seen < call.cancelAfterBytes) {
          const { done, value } = await reader.read();
          if (done) break;
          seen += value.byteLength;
        }
        await reader.cancel();
      } else {
        await res.arrayBuffer();
      }
    } catch {
      // Interrupted streams reject; the record says what happened.
    }
  });
}

/** Sends every call, `concurrency` at a time, each as soon as a previous one is done. */
export async function sendDemoCalls(
  meter: Pick<ReturnType<typeof createMeter>, 'fetch' | 'run'>,
  simUrl: string,
  calls: readonly DemoCall[],
  concurrency: number,
  caller: DemoCaller = {},
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < calls.length; i = next++) await sendDemoCall(meter, simUrl, calls[i]!, caller);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** A column of the per-call table; model names and error types come from the provider. */
function pad(raw: string, width: number): string {
  const value = printable(raw);
  return value.length >= width ? value.slice(0, width) : value + ' '.repeat(width - value.length);
}

function row(r: CallRecord): string {
  const cost = !r.usage
    ? '-'
    : r.cost.totalNanos === null
      ? 'unpriced'
      : `$${(r.cost.totalNanos / 1e9).toFixed(6)}`;
  const ttft = r.timing.timeToFirstTokenMs === null ? '-' : `${r.timing.timeToFirstTokenMs.toFixed(0)}ms`;
  const split = [r.timing.queue, r.timing.prefill, r.timing.generation]
    .map((c) => (c ? `${c.ms.toFixed(0)}${c.source[0]}` : '-'))
    .join('/');
  return [
    pad(r.attribution.user ?? '-', 6),
    pad(r.provider, 18),
    pad(r.responseModel ?? r.requestModel ?? '-', 24),
    pad(r.outcome + (r.errorType ? `:${r.errorType}` : ''), 28),
    pad(
      `${r.usage?.inputTokens ?? '-'}/${r.usage?.outputTokens ?? '-'}${r.usage?.source === 'estimated' ? '~' : ''}`,
      10,
    ),
    pad(cost, 11),
    pad(ttft, 7),
    pad(`${r.timing.durationMs.toFixed(0)}ms`, 8),
    split,
  ].join(' ');
}

export async function runDemo(
  options: { calls?: number; concurrency?: number; quiet?: boolean; database?: string } = {},
): Promise<CallRecord[]> {
  const write = (line: string) => process.stdout.write(`${line}\n`);
  const sim = await startSimulator();
  const telemetry = setupTelemetry({ serviceName: 'llm-meter-demo', quiet: options.quiet });
  const records: CallRecord[] = [];
  const meter = createMeter({
    database: options.database ?? ':memory:',
    tracerProvider: telemetry.tracerProvider,
    meterProvider: telemetry.meterProvider,
    onRecord: (r) => records.push(r),
  });
  write(printable(`llm-meter demo: simulator at ${sim.url}, spans to ${telemetry.destination}`));
  await sendDemoCalls(meter, sim.url, workload(options.calls ?? 18), options.concurrency ?? 4);
  await meter.flush();
  const summary = await meter.store!.summary({ groupBy: ['provider', 'model'] });
  await meter.shutdown();
  await telemetry.shutdown();
  await sim.close();

  write('');
  write(
    [
      pad('user', 6),
      pad('provider', 18),
      pad('model', 24),
      pad('outcome', 28),
      pad('in/out', 10),
      pad('cost', 11),
      pad('ttft', 7),
      pad('total', 8),
      'queue/prefill/gen (p=provider e=estimated o=observed)',
    ].join(' '),
  );
  for (const r of records.sort((a, b) => a.timing.startMs - b.timing.startMs)) write(row(r));
  const total = records.reduce((sum, r) => sum + (r.cost.totalNanos ?? 0), 0);
  const unpriced = records.filter((r) => r.usage && r.cost.totalNanos === null).length;
  write('');
  write(
    `${records.length} calls, $${(total / 1e9).toFixed(6)} total, ${unpriced} unpriced (~ = estimated tokens)`,
  );
  write('');
  write('From the usage store (what `llm-meter report` and GET /v1/usage/summary answer):');
  write(
    table(
      ['provider', 'model', 'requests', 'errors', 'input', 'output', 'cost'],
      summary.rows.map((r) => [
        r.provider ?? null,
        r.model ?? null,
        r.requests,
        r.errors,
        r.input_tokens,
        r.output_tokens,
        r.cost_usd === null ? null : `$${r.cost_usd.toFixed(6)}`,
      ]),
    ),
  );
  return records;
}
