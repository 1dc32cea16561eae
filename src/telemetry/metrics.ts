import { type Attributes, type MeterProvider, metrics } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE, ATTR_SERVER_ADDRESS } from '@opentelemetry/semantic-conventions';
import { type CallRecord, NANOS_PER_USD } from '../record.js';
import { createDeferred } from './deferred.js';
import * as sc from './semconv.js';

interface MetricSink {
  record(record: CallRecord): void;
  /** Hands everything recorded so far to the SDK now (before its exporters flush). */
  flush(): void;
}

/**
 * GenAI client metrics (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/)
 * plus cost and call counters. Attributes are low-cardinality only: no user, no ids.
 *
 * Records reach the SDK in a batch on the next `setImmediate` (./deferred.ts), off the caller's
 * completion path; the counters of a batch go in as one `add` per attribute set, since the SDK
 * hashes the attributes of every measurement.
 */
export function createMetricSink(options: {
  meterProvider?: MeterProvider;
  /** Failures while recording (the caller never sees them). */
  onError?: (error: unknown) => void;
}): MetricSink {
  let instruments: ReturnType<typeof create> | null = null;
  const create = () => {
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
      sc.SCOPE.name,
      sc.SCOPE.version,
    );
    return {
      tokens: meter.createHistogram(sc.METRIC_TOKEN_USAGE, {
        unit: '{token}',
        description: 'Number of input and output tokens used.',
        advice: { explicitBucketBoundaries: sc.TOKEN_BUCKETS },
      }),
      duration: meter.createHistogram(sc.METRIC_OPERATION_DURATION, {
        unit: 's',
        description: 'GenAI operation duration.',
        advice: { explicitBucketBoundaries: sc.DURATION_BUCKETS },
      }),
      ttfc: meter.createHistogram(sc.METRIC_TIME_TO_FIRST_CHUNK, {
        unit: 's',
        description: 'Time to receive the first chunk in a streaming operation.',
        advice: { explicitBucketBoundaries: sc.DURATION_BUCKETS },
      }),
      tpoc: meter.createHistogram(sc.METRIC_TIME_PER_OUTPUT_CHUNK, {
        unit: 's',
        description: 'Time between consecutive chunks after the first in a streaming operation.',
        advice: { explicitBucketBoundaries: sc.CHUNK_BUCKETS },
      }),
      cost: meter.createCounter(sc.METRIC_COST, { unit: 'USD', description: 'Cost of LLM calls in USD.' }),
      calls: meter.createCounter(sc.METRIC_CALLS, {
        unit: '{call}',
        description: 'LLM calls by outcome, including unpriced ones.',
      }),
      toolCalls: meter.createCounter(sc.METRIC_TOOL_CALLS, {
        unit: '{call}',
        description: 'Tool calls the model made, by whether their arguments were valid JSON.',
      }),
    };
  };

  const sets = createAttributeSets();

  function recordAll(records: readonly CallRecord[]): void {
    instruments ??= create();
    const i = instruments;
    const tallied: AttributeSets[] = [];
    for (const r of records) {
      let set: AttributeSets;
      try {
        set = sets.of(r);
      } catch (error) {
        options.onError?.(error);
        continue;
      }
      if (set.callCount === 0) tallied.push(set);
      set.callCount++;
      const nanos = r.cost.totalNanos;
      if (nanos !== null && nanos > 0) set.costNanos += nanos;
      try {
        i.duration.record(r.timing.durationMs / 1000, set.withError);
        if (r.usage) {
          i.tokens.record(r.usage.inputTokens, set.input);
          i.tokens.record(r.usage.outputTokens, set.output);
        }
        if (r.toolCalls > 0) {
          const invalid = Math.min(r.invalidToolCalls, r.toolCalls);
          if (r.toolCalls > invalid) i.toolCalls.add(r.toolCalls - invalid, set.toolsValid);
          if (invalid > 0) i.toolCalls.add(invalid, set.toolsInvalid);
        }
        const t = r.timing;
        if (r.request.stream && t.timeToFirstTokenMs !== null) {
          i.ttfc.record(t.timeToFirstTokenMs / 1000, set.base);
          if (t.generationMs !== null && r.chunks > 1) {
            i.tpoc.record(t.generationMs / 1000 / (r.chunks - 1), set.base);
          }
        }
      } catch (error) {
        options.onError?.(error);
      }
    }
    for (const set of tallied) {
      const { callCount, costNanos } = set;
      set.callCount = 0;
      set.costNanos = 0;
      try {
        i.calls.add(callCount, set.calls);
        if (costNanos > 0) i.cost.add(costNanos / NANOS_PER_USD, set.base);
      } catch (error) {
        options.onError?.(error);
      }
    }
  }

  const deferred = createDeferred(recordAll, options.onError);
  return { record: deferred.push, flush: deferred.flush };
}

/** The attribute sets one call records under, and the counters' tallies of a batch. */
interface AttributeSets {
  base: Attributes;
  withError: Attributes;
  calls: Attributes;
  input: Attributes;
  output: Attributes;
  toolsValid: Attributes;
  toolsInvalid: Attributes;
  callCount: number;
  /** Integer nano-dollars: a batch's cost adds up exactly before it becomes USD. */
  costNanos: number;
}

const MAX_CACHED_SETS = 1000;

/**
 * A call's attribute sets, made once per distinct combination and reused: the same few
 * models, hosts and outcomes repeat call after call, so this saves five objects a call. Keys are
 * inserted in sorted order, which is the order the SDK sorts them into to hash them.
 * Bounded: when full it starts over (the sets are only a cache; the SDK keeps the series).
 */
function createAttributeSets(): { of(r: CallRecord): AttributeSets } {
  const cache = new Map<string, AttributeSets>();
  return {
    of(r) {
      const unpriced = r.cost.totalNanos === null;
      // Model names and hosts come from the request: their lengths keep the key unambiguous.
      const key =
        `${r.operation}|${r.provider}|${r.errorType}|${r.outcome}|${unpriced}|` +
        `${part(r.requestModel)}|${part(r.responseModel)}|${part(r.serverAddress)}`;
      let sets = cache.get(key);
      if (sets === undefined) {
        if (cache.size >= MAX_CACHED_SETS) cache.clear();
        sets = build(r, unpriced);
        cache.set(key, sets);
      }
      return sets;
    },
  };
}

function part(value: string | null): string {
  return value ? `${value.length}:${value}` : '';
}

function build(r: CallRecord, unpriced: boolean): AttributeSets {
  // Sorted: error.type < gen_ai.operation.name < gen_ai.provider.name < gen_ai.request.model
  // < gen_ai.response.model < gen_ai.token.type < llm_meter.* < server.address.
  const sorted = (extra: Attributes, withError: boolean): Attributes => {
    const a: Attributes = {};
    if (withError && r.errorType) a[ATTR_ERROR_TYPE] = r.errorType;
    a[sc.GEN_AI_OPERATION_NAME] = r.operation;
    a[sc.GEN_AI_PROVIDER_NAME] = r.provider;
    if (r.requestModel) a[sc.GEN_AI_REQUEST_MODEL] = r.requestModel;
    if (r.responseModel) a[sc.GEN_AI_RESPONSE_MODEL] = r.responseModel;
    for (const k in extra) a[k] = extra[k];
    if (r.serverAddress) a[ATTR_SERVER_ADDRESS] = r.serverAddress;
    return a;
  };
  const base = sorted({}, false);
  return {
    base,
    withError: r.errorType ? sorted({}, true) : base,
    calls: sorted({ [sc.LLM_METER.unpriced]: unpriced, [sc.LLM_METER.outcome]: r.outcome }, true),
    input: sorted({ [sc.GEN_AI_TOKEN_TYPE]: 'input' }, false),
    output: sorted({ [sc.GEN_AI_TOKEN_TYPE]: 'output' }, false),
    toolsValid: sorted({ [sc.LLM_METER.toolCallValid]: true }, false),
    toolsInvalid: sorted({ [sc.LLM_METER.toolCallValid]: false }, false),
    callCount: 0,
    costNanos: 0,
  };
}
