import { type Attributes, type MeterProvider, metrics } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE, ATTR_SERVER_ADDRESS } from '@opentelemetry/semantic-conventions';
import type { CallRecord } from '../record.js';
import * as sc from './semconv.js';

export interface MetricSink {
  record(record: CallRecord): void;
}

/**
 * GenAI client metrics (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/)
 * plus cost and call counters. Attributes are low-cardinality only: no user, no ids.
 */
export function createMetricSink(options: { meterProvider?: MeterProvider }): MetricSink {
  let instruments: ReturnType<typeof create> | null = null;
  const create = () => {
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter('llm-meter', '0.1.0');
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
    };
  };

  return {
    record(r) {
      instruments ??= create();
      const attrs: Attributes = {
        [sc.GEN_AI_OPERATION_NAME]: r.operation,
        [sc.GEN_AI_PROVIDER_NAME]: r.provider,
      };
      if (r.requestModel) attrs[sc.GEN_AI_REQUEST_MODEL] = r.requestModel;
      if (r.responseModel) attrs[sc.GEN_AI_RESPONSE_MODEL] = r.responseModel;
      if (r.serverAddress) attrs[ATTR_SERVER_ADDRESS] = r.serverAddress;
      const withError: Attributes = r.errorType ? { ...attrs, [ATTR_ERROR_TYPE]: r.errorType } : attrs;
      instruments.duration.record(r.timing.durationMs / 1000, withError);
      instruments.calls.add(1, {
        ...withError,
        [sc.LLM_METER.outcome]: r.outcome,
        [sc.LLM_METER.unpriced]: r.cost.totalNanos === null,
      });
      if (r.usage) {
        instruments.tokens.record(r.usage.inputTokens, { ...attrs, [sc.GEN_AI_TOKEN_TYPE]: 'input' });
        instruments.tokens.record(r.usage.outputTokens, { ...attrs, [sc.GEN_AI_TOKEN_TYPE]: 'output' });
      }
      if (r.cost.totalNanos !== null && r.cost.totalNanos > 0) {
        instruments.cost.add(r.cost.totalNanos / 1e9, attrs);
      }
      const t = r.timing;
      if (r.request.stream && t.timeToFirstTokenMs !== null) {
        instruments.ttfc.record(t.timeToFirstTokenMs / 1000, attrs);
        if (t.generationMs !== null && r.chunks > 1) {
          instruments.tpoc.record(t.generationMs / 1000 / (r.chunks - 1), attrs);
        }
      }
    },
  };
}
