/**
 * JSON Schemas of the usage API's responses, for /openapi.json (components.schemas).
 */
import { MAX_SUMMARY_ROWS } from '../store/summary.js';
import { MAX_TIMESERIES_BUCKETS, MAX_TIMESERIES_POINTS } from '../store/timeseries.js';
import { GROUP_BY_KEYS, METRICS, TIME_BUCKETS } from '../store/types.js';
import type { JsonSchema } from './types.js';

const nullable = (type: string): JsonSchema => ({ type: [type, 'null'] });
const integer = { type: 'integer' };

const metrics: Record<string, JsonSchema> = {
  requests: integer,
  errors: { ...integer, description: 'Calls whose outcome is `error`.' },
  input_tokens: { ...integer, description: 'All input tokens, cache reads and writes included.' },
  cached_input_tokens: integer,
  cache_write_input_tokens: integer,
  output_tokens: { ...integer, description: 'Output tokens, reasoning included.' },
  reasoning_tokens: integer,
  cost_usd: {
    ...nullable('number'),
    description: 'Cost of the priced calls; null when none had a known price.',
  },
  unpriced_requests: {
    ...integer,
    description: 'Calls without a known price: when > 0, cost_usd is a lower bound.',
  },
  latency_p50_ms: { ...nullable('number'), description: 'From log-bucket histograms: within 4.5%.' },
  latency_p95_ms: nullable('number'),
  ttft_p50_ms: nullable('number'),
  ttft_p95_ms: nullable('number'),
};

const eventFields: Record<string, JsonSchema> = {
  id: { type: 'string' },
  time: { type: 'string', format: 'date-time' },
  end_time: { type: 'string', format: 'date-time' },
  trace_id: nullable('string'),
  span_id: nullable('string'),
  provider: { type: 'string' },
  operation: { type: 'string' },
  model: nullable('string'),
  request_model: nullable('string'),
  response_model: nullable('string'),
  response_id: nullable('string'),
  server_address: nullable('string'),
  server_port: nullable('integer'),
  user: nullable('string'),
  project: nullable('string'),
  feature: nullable('string'),
  tags: { type: 'object', additionalProperties: { type: 'string' } },
  api_key_hash: nullable('string'),
  stream: { type: 'boolean' },
  max_tokens: nullable('integer'),
  temperature: nullable('number'),
  tool_count: integer,
  tool_rounds: integer,
  outcome: { type: 'string', enum: ['ok', 'error', 'cancelled', 'blocked'] },
  error_type: nullable('string'),
  error_code: nullable('string'),
  http_status: nullable('integer'),
  retryable: nullable('boolean'),
  retry_after_ms: nullable('integer'),
  finish_reasons: { type: 'array', items: { type: 'string' } },
  input_tokens: nullable('integer'),
  cached_input_tokens: nullable('integer'),
  cache_write_input_tokens: nullable('integer'),
  output_tokens: nullable('integer'),
  reasoning_tokens: nullable('integer'),
  tokens_source: { type: ['string', 'null'], enum: ['provider', 'estimated', null] },
  tool_calls: integer,
  invalid_tool_calls: integer,
  chunks: integer,
  cost_usd: nullable('number'),
  input_cost_usd: nullable('number'),
  cache_read_cost_usd: nullable('number'),
  cache_write_cost_usd: nullable('number'),
  output_cost_usd: nullable('number'),
  cost_source: nullable('string'),
  priced_as: nullable('string'),
  input_tokens_estimate: nullable('integer'),
  projected_max_cost_usd: nullable('number'),
  context_window: nullable('integer'),
  context_exceeded: nullable('boolean'),
  duration_ms: { type: 'number' },
  headers_ms: nullable('number'),
  ttft_ms: nullable('number'),
  queue_ms: nullable('number'),
  queue_source: nullable('string'),
  prefill_ms: nullable('number'),
  prefill_source: nullable('string'),
  generation_ms: nullable('number'),
  generation_source: nullable('string'),
  output_tokens_per_second: nullable('number'),
  server_processing_ms: nullable('number'),
  content: { description: 'Only with captureContent: true; null otherwise.' },
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export const USAGE_SCHEMAS: Record<string, JsonSchema> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['type', 'message'],
        properties: {
          type: {
            type: 'string',
            enum: ['invalid_request', 'unauthorized', 'not_found', 'internal', 'unavailable'],
          },
          message: { type: 'string' },
          field: { type: 'string', description: 'The query parameter or body field at fault.' },
        },
      },
    },
  },
  UsageMetrics: { type: 'object', required: Object.keys(metrics), properties: metrics },
  SummaryRow: {
    allOf: [
      ref('UsageMetrics'),
      {
        type: 'object',
        description:
          'The group_by keys of the group: a dimension value (null when absent) or a time bucket label.',
        properties: {
          ...Object.fromEntries(GROUP_BY_KEYS.map((key) => [key, nullable('string')])),
          other: {
            type: 'boolean',
            const: true,
            description:
              'Present on the row that adds up the groups past `limit` (one per time bucket); its dimensions are null.',
          },
          other_groups: { ...integer, description: 'How many groups an `other` row adds up.' },
        },
      },
    ],
  },
  SummaryResult: {
    type: 'object',
    description: `At most ${MAX_SUMMARY_ROWS} rows; past \`limit\` groups, the rest is in \`other\` rows. The totals count every call.`,
    required: ['rows', 'totals'],
    properties: { rows: { type: 'array', items: ref('SummaryRow') }, totals: ref('UsageMetrics') },
  },
  UsageEvent: { type: 'object', required: Object.keys(eventFields), properties: eventFields },
  EventsPage: {
    type: 'object',
    required: ['events', 'next_cursor'],
    properties: { events: { type: 'array', items: ref('UsageEvent') }, next_cursor: nullable('string') },
  },
  TimeseriesResult: {
    type: 'object',
    description: `At most ${MAX_TIMESERIES_BUCKETS} buckets and ${MAX_TIMESERIES_POINTS} points (series × buckets).`,
    required: ['interval', 'metric', 'series'],
    properties: {
      interval: { type: 'string', enum: [...TIME_BUCKETS] },
      metric: { type: 'string', enum: [...METRICS] },
      series: {
        type: 'array',
        items: {
          type: 'object',
          required: ['key', 'points'],
          properties: {
            key: { type: 'object', additionalProperties: nullable('string') },
            other: {
              type: 'boolean',
              const: true,
              description:
                'Present on the last series when there are more than `limit`: the rest, added up (its key values are null).',
            },
            other_groups: { ...integer, description: 'How many series the `other` series adds up.' },
            points: {
              type: 'array',
              items: {
                type: 'object',
                required: ['t', 'value'],
                properties: { t: { type: 'string', format: 'date-time' }, value: nullable('number') },
              },
            },
          },
        },
      },
    },
  },
  Status: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } },
};

export { ref as schemaRef };
