import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { ProxyStats, RunningProxy } from '../../../src/proxy/types.js';
import {
  type GatewayFigures,
  type GatewaySource,
  observeGateway,
} from '../../../src/telemetry/instruments/gateway.js';
import { observeSource, type SourceUnderTest } from '../../helpers/scrape.js';

let source: SourceUnderTest | undefined;
afterEach(() => source?.shutdown());

// Telemetry never imports the gateway; the gateway's own types must still fit the shape it reads.
expectTypeOf<ProxyStats>().toExtend<GatewayFigures>();
expectTypeOf<RunningProxy>().toExtend<GatewaySource>();

const KEY = 'https://api.openai.com 0123456789abcdef';
const STATS: GatewayFigures = {
  requests: 12,
  inFlight: 1,
  gatewayErrors: 2,
  circuits: {
    'openai/gpt-4o-mini': { state: 'closed', failures: 0 },
    'openai/gpt-4o': { state: 'open', failures: 3 },
    'anthropic/claude-haiku-4-5': { state: 'half_open', failures: 1 },
  },
  rateLimits: {
    [KEY]: {
      queued: 2,
      inFlight: 4,
      remainingRequests: 99,
      remainingTokens: null,
      rateLimited: 1,
      refused: 3,
    },
  },
};

describe('the gateway on /metrics', () => {
  it('has requests, its own answers, each circuit and each rate-limit budget, with their help text', async () => {
    source = observeSource((registry) => observeGateway(registry, { stats: () => STATS }));
    const scrape = await source.scrape();
    expect(scrape.families).toEqual([
      '# HELP llm_meter_gateway_requests_total Requests the gateway received.',
      '# TYPE llm_meter_gateway_requests_total counter',
      '# HELP llm_meter_gateway_in_flight Requests the gateway is answering now.',
      '# TYPE llm_meter_gateway_in_flight gauge',
      '# HELP llm_meter_gateway_errors_total Requests the gateway answered itself: no route, bad key, upstream unreachable, timeouts.',
      '# TYPE llm_meter_gateway_errors_total counter',
      '# HELP llm_meter_circuit_state Each circuit (provider/model): 0 closed, 1 half-open, 2 open (calls refused locally).',
      '# TYPE llm_meter_circuit_state gauge',
      '# HELP llm_meter_circuit_failures Failures inside the circuit breaker window, per circuit.',
      '# TYPE llm_meter_circuit_failures gauge',
      '# HELP llm_meter_rate_limiter_queued Calls waiting for rate-limit budget.',
      '# TYPE llm_meter_rate_limiter_queued gauge',
      '# HELP llm_meter_rate_limiter_in_flight Calls sent under the rate limiter.',
      '# TYPE llm_meter_rate_limiter_in_flight gauge',
      "# HELP llm_meter_rate_limiter_remaining_requests The provider's remaining request budget, as last reported.",
      '# TYPE llm_meter_rate_limiter_remaining_requests gauge',
      // No remaining_tokens family: the provider has not reported a token budget.
      '# HELP llm_meter_rate_limiter_rate_limited_total 429s the provider answered through the rate limiter.',
      '# TYPE llm_meter_rate_limiter_rate_limited_total counter',
      '# HELP llm_meter_rate_limiter_refused_total Calls the rate limiter refused itself.',
      '# TYPE llm_meter_rate_limiter_refused_total counter',
    ]);
    const m = scrape.exposition;
    expect(m.sum('llm_meter_gateway_requests_total')).toBe(12);
    expect(m.sum('llm_meter_gateway_in_flight')).toBe(1);
    expect(m.sum('llm_meter_gateway_errors_total')).toBe(2);
    expect(
      Object.fromEntries(
        m.find('llm_meter_circuit_state').map((s) => [s.labels['llm_meter_circuit'], s.value]),
      ),
      'states as numbers: 0 closed, 1 half-open, 2 open',
    ).toEqual({ 'openai/gpt-4o-mini': 0, 'openai/gpt-4o': 2, 'anthropic/claude-haiku-4-5': 1 });
    expect(m.sum('llm_meter_circuit_failures', { llm_meter_circuit: 'openai/gpt-4o' })).toBe(3);
    const at = { llm_meter_rate_limit_key: KEY };
    expect(m.sum('llm_meter_rate_limiter_queued', at)).toBe(2);
    expect(m.sum('llm_meter_rate_limiter_in_flight', at)).toBe(4);
    expect(m.sum('llm_meter_rate_limiter_remaining_requests', at)).toBe(99);
    expect(m.find('llm_meter_rate_limiter_remaining_tokens'), 'unknown is absent, not 0').toEqual([]);
    expect(m.sum('llm_meter_rate_limiter_rate_limited_total', at)).toBe(1);
    expect(m.sum('llm_meter_rate_limiter_refused_total', at)).toBe(3);
    for (const name of m.names) {
      if (name.startsWith('llm_meter_circuit_'))
        expect([...(m.labels.get(name) ?? [])].sort()).toContain('llm_meter_circuit');
      if (name.startsWith('llm_meter_rate_limiter_'))
        expect([...(m.labels.get(name) ?? [])].sort()).toContain('llm_meter_rate_limit_key');
    }
  });

  it('has the counts and no circuit or rate-limit series when neither is on', async () => {
    const stats: GatewayFigures = {
      requests: 3,
      inFlight: 0,
      gatewayErrors: 0,
      circuits: {},
      rateLimits: {},
    };
    source = observeSource((registry) => observeGateway(registry, { stats: () => stats }));
    expect((await source.scrape()).series).toEqual([
      'llm_meter_gateway_requests_total',
      'llm_meter_gateway_in_flight',
      'llm_meter_gateway_errors_total',
    ]);
  });
});
