import type { Behavior, Fault } from './types.js';

export const DEFAULT_BEHAVIOR: Readonly<Behavior> = {
  queueMs: 0,
  prefillMsPerToken: 0,
  msPerToken: 0,
  outputTokens: 12,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  toolCalls: 0,
  report: 'none',
  fault: null,
  faultAfterTokens: 3,
  retryAfterS: 1,
  slowHeadersMs: 200,
  lineEnding: '\n',
  chunking: 'event',
};

const DURATIONS: readonly string[] = [
  'queueMs',
  'prefillMsPerToken',
  'msPerToken',
  'retryAfterS',
  'slowHeadersMs',
];
const COUNTS: readonly string[] = [
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'reasoningTokens',
  'toolCalls',
  'faultAfterTokens',
];

const FAULTS: readonly Fault[] = [
  'rate_limit',
  'server_error',
  'overloaded',
  'bad_request',
  'context_length',
  'auth',
  'forbidden',
  'not_found',
  'content_filter',
  'cut_stream',
  'error_event',
  'garbage',
  'slow_headers',
];

const CHOICES: Record<string, readonly unknown[]> = {
  report: ['none', 'groq', 'llamacpp', 'vllm', 'deepseek'],
  fault: [null, ...FAULTS],
  lineEnding: ['\n', '\r\n', '\r'],
  chunking: ['event', 'byte', 'random'],
};

const show = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');

/** Checks a partial behaviour where it enters (options, enqueue, header) and returns it unchanged. */
export function checkBehavior(partial: unknown, source: string): Partial<Behavior> {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new TypeError(`Expected ${source} to be an object of behaviour fields.`);
  }
  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    if (DURATIONS.includes(key)) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new TypeError(`Expected \`${key}\` to be a non-negative number.`);
      }
    } else if (COUNTS.includes(key)) {
      if (!Number.isSafeInteger(value) || (value as number) < 0) {
        throw new TypeError(`Expected \`${key}\` to be a non-negative integer.`);
      }
    } else if (key in CHOICES) {
      if (!CHOICES[key]!.includes(value)) {
        throw new TypeError(`Expected \`${key}\` to be one of ${show(CHOICES[key]!)}.`);
      }
    } else {
      throw new TypeError(`Unknown behaviour field \`${key}\` in ${source}.`);
    }
  }
  return partial as Partial<Behavior>;
}

/** Later layers win; undefined fields do not override. */
export function mergeBehavior(...layers: (Partial<Behavior> | undefined)[]): Behavior {
  const merged: Behavior = { ...DEFAULT_BEHAVIOR };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer ?? {})) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}
