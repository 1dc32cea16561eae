/**
 * CallRecords for tests: every field filled with realistic values (a streamed OpenAI chat call
 * with cache reads, priced from the catalog), overridable per test.
 */
import type { CallRecord } from '../../src/record.js';

let counter = 0;

export type RecordOverrides = Partial<Omit<CallRecord, 'timing' | 'cost' | 'attribution' | 'usage'>> & {
  /** Start of the call, epoch ms. */
  startMs?: number;
  durationMs?: number;
  ttftMs?: number | null;
  /** Pass undefined explicitly for a call without one. */
  user?: string | undefined;
  project?: string | undefined;
  feature?: string | undefined;
  tags?: Record<string, string>;
  usage?: Partial<NonNullable<CallRecord['usage']>> | null;
  /** Total cost in nano-dollars; null for an unpriced call. */
  costNanos?: number | null;
};

export function makeRecord(overrides: RecordOverrides = {}): CallRecord {
  counter++;
  const {
    startMs = Date.UTC(2025, 2, 10, 14, 30, 0) + counter,
    durationMs = 1200,
    ttftMs = 250,
    user: _user,
    project: _project,
    feature: _feature,
    tags = { env: 'test' },
    usage: usageOverride,
    costNanos = 4_125_000,
    ...rest
  } = overrides;
  const user = 'user' in overrides ? _user : 'alice';
  const project = 'project' in overrides ? _project : 'support';
  const feature = 'feature' in overrides ? _feature : 'triage';
  const usage =
    usageOverride === null
      ? null
      : {
          inputTokens: 1_200,
          outputTokens: 350,
          cacheReadTokens: 400,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
          source: 'provider' as const,
          ...usageOverride,
        };
  const firstTokenMs = ttftMs === null ? null : startMs + ttftMs;
  const record: CallRecord = {
    id: `call_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 10)}`,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    provider: 'openai',
    operation: 'chat',
    requestModel: 'gpt-4o-mini',
    responseModel: 'gpt-4o-mini-2024-07-18',
    responseId: `chatcmpl-${counter}`,
    serverAddress: 'api.openai.com',
    serverPort: 443,
    request: {
      parsed: true,
      model: 'gpt-4o-mini',
      stream: true,
      maxTokens: 1024,
      temperature: 0.2,
      choices: 1,
      toolCount: 2,
      toolRounds: 1,
    },
    attribution: { user, project, feature, tags, apiKeyHash: 'k_3f9a1c' },
    outcome: 'ok',
    errorType: null,
    errorCode: null,
    retryable: null,
    retryAfterMs: null,
    httpStatus: 200,
    rateLimit: {
      remainingRequests: 4_999,
      remainingTokens: 1_998_000,
      limitRequests: 5_000,
      limitTokens: 2_000_000,
      resetTokensMs: 60,
    },
    finishReasons: ['stop'],
    usage,
    toolCalls: 0,
    invalidToolCalls: 0,
    preflight: {
      inputTokensEstimate: 1_180,
      projectedMaxCostNanos: 800_000,
      contextWindow: 128_000,
      contextExceeded: false,
    },
    cost: {
      totalNanos: costNanos,
      inputNanos: costNanos === null ? null : Math.round(costNanos * 0.3),
      cacheReadNanos: costNanos === null ? null : Math.round(costNanos * 0.05),
      cacheWriteNanos: costNanos === null ? null : 0,
      outputNanos:
        costNanos === null ? null : costNanos - Math.round(costNanos * 0.3) - Math.round(costNanos * 0.05),
      source: costNanos === null ? null : 'catalog',
      pricedAs: costNanos === null ? null : 'gpt-4o-mini',
    },
    timing: {
      startMs,
      headersMs: startMs + Math.min(180, durationMs),
      firstTokenMs,
      lastTokenMs: startMs + durationMs - 5,
      endMs: startMs + durationMs,
      durationMs,
      timeToFirstTokenMs: ttftMs,
      generationMs: ttftMs === null ? null : durationMs - ttftMs - 5,
      outputTokensPerSecond: 310.5,
      queue: { ms: 80, source: 'estimated' },
      prefill: { ms: 120, source: 'estimated' },
      generation: ttftMs === null ? null : { ms: durationMs - ttftMs - 5, source: 'observed' },
      serverProcessingMs: 1_050,
    },
    chunks: 42,
    ...rest,
  };
  return record;
}

/** A failed call: a 429 before any token, no usage, priced at 0. */
export function makeErrorRecord(overrides: RecordOverrides = {}): CallRecord {
  return makeRecord({
    outcome: 'error',
    errorType: 'rate_limited',
    errorCode: 'rate_limit_exceeded',
    retryable: true,
    retryAfterMs: 2_000,
    httpStatus: 429,
    finishReasons: [],
    usage: null,
    costNanos: 0,
    ttftMs: null,
    durationMs: 95,
    chunks: 0,
    responseModel: null,
    responseId: null,
    ...overrides,
  });
}
