/**
 * The gateway's figures (`RunningProxy.stats()`): requests, calls it answered itself, each
 * circuit of the circuit breaker and each rate-limit budget. The shapes are this file's own, so
 * telemetry never imports the gateway; the gateway's `ProxyStats` satisfies them
 * (test/telemetry/instruments/gateway.test.ts checks it at compile time).
 */
import { observableCounter, observableGauge, observableUpDown, type Registry } from './register.js';

export const METRIC_GATEWAY_REQUESTS = 'llm_meter.gateway.requests';
export const METRIC_GATEWAY_IN_FLIGHT = 'llm_meter.gateway.in_flight';
export const METRIC_GATEWAY_ERRORS = 'llm_meter.gateway.errors';
export const METRIC_CIRCUIT_STATE = 'llm_meter.circuit.state';
export const METRIC_CIRCUIT_FAILURES = 'llm_meter.circuit.failures';
export const METRIC_RATE_LIMITER_QUEUED = 'llm_meter.rate_limiter.queued';
export const METRIC_RATE_LIMITER_IN_FLIGHT = 'llm_meter.rate_limiter.in_flight';
export const METRIC_RATE_LIMITER_REMAINING_REQUESTS = 'llm_meter.rate_limiter.remaining_requests';
export const METRIC_RATE_LIMITER_REMAINING_TOKENS = 'llm_meter.rate_limiter.remaining_tokens';
export const METRIC_RATE_LIMITER_RATE_LIMITED = 'llm_meter.rate_limiter.rate_limited';
export const METRIC_RATE_LIMITER_REFUSED = 'llm_meter.rate_limiter.refused';
/** A circuit: `{provider}/{model}`. */
export const ATTR_CIRCUIT = 'llm_meter.circuit';
/** A rate-limit budget: the upstream and a hash of the key it is spent under. */
export const ATTR_RATE_LIMIT_KEY = 'llm_meter.rate_limit.key';

/** The value of `llm_meter.circuit.state` for each state. */
const CIRCUIT_STATE = { closed: 0, half_open: 1, open: 2 } as const;

interface CircuitFigures {
  state: keyof typeof CIRCUIT_STATE;
  failures: number;
}

interface RateLimitFigures {
  queued: number;
  inFlight: number;
  /** Null until the provider reported it. */
  remainingRequests: number | null;
  remainingTokens: number | null;
  rateLimited: number;
  refused: number;
}

export interface GatewayFigures {
  requests: number;
  inFlight: number;
  gatewayErrors: number;
  circuits: Record<string, CircuitFigures>;
  rateLimits: Record<string, RateLimitFigures>;
}

export interface GatewaySource {
  stats(): GatewayFigures;
}

export function observeGateway(registry: Registry, gateway: GatewaySource): void {
  const { meter } = registry;
  const requests = observableCounter(meter, {
    name: METRIC_GATEWAY_REQUESTS,
    unit: '{request}',
    description: 'Requests the gateway received.',
  });
  const inFlight = observableUpDown(meter, {
    name: METRIC_GATEWAY_IN_FLIGHT,
    unit: '{request}',
    description: 'Requests the gateway is answering now.',
  });
  const errors = observableCounter(meter, {
    name: METRIC_GATEWAY_ERRORS,
    unit: '{request}',
    description: 'Requests the gateway answered itself: no route, bad key, upstream unreachable, timeouts.',
  });
  const circuitState = observableGauge(meter, {
    name: METRIC_CIRCUIT_STATE,
    unit: '1',
    description: 'Each circuit (provider/model): 0 closed, 1 half-open, 2 open (calls refused locally).',
  });
  const circuitFailures = observableGauge(meter, {
    name: METRIC_CIRCUIT_FAILURES,
    unit: '{call}',
    description: 'Failures inside the circuit breaker window, per circuit.',
  });
  const queued = observableGauge(meter, {
    name: METRIC_RATE_LIMITER_QUEUED,
    unit: '{call}',
    description: 'Calls waiting for rate-limit budget.',
  });
  const limited = observableGauge(meter, {
    name: METRIC_RATE_LIMITER_IN_FLIGHT,
    unit: '{call}',
    description: 'Calls sent under the rate limiter.',
  });
  const remainingRequests = observableGauge(meter, {
    name: METRIC_RATE_LIMITER_REMAINING_REQUESTS,
    unit: '{request}',
    description: "The provider's remaining request budget, as last reported.",
  });
  const remainingTokens = observableGauge(meter, {
    name: METRIC_RATE_LIMITER_REMAINING_TOKENS,
    unit: '{token}',
    description: "The provider's remaining token budget, as last reported.",
  });
  const rateLimited = observableCounter(meter, {
    name: METRIC_RATE_LIMITER_RATE_LIMITED,
    unit: '{call}',
    description: '429s the provider answered through the rate limiter.',
  });
  const refused = observableCounter(meter, {
    name: METRIC_RATE_LIMITER_REFUSED,
    unit: '{call}',
    description: 'Calls the rate limiter refused itself.',
  });
  const all = [
    requests,
    inFlight,
    errors,
    circuitState,
    circuitFailures,
    queued,
    limited,
    remainingRequests,
    remainingTokens,
    rateLimited,
    refused,
  ];
  registry.batch(all, (result) => {
    const s = gateway.stats();
    result.observe(requests, s.requests);
    result.observe(inFlight, s.inFlight);
    result.observe(errors, s.gatewayErrors);
    for (const [circuit, c] of Object.entries(s.circuits)) {
      const at = { [ATTR_CIRCUIT]: circuit };
      result.observe(circuitState, CIRCUIT_STATE[c.state], at);
      result.observe(circuitFailures, c.failures, at);
    }
    for (const [key, r] of Object.entries(s.rateLimits)) {
      const at = { [ATTR_RATE_LIMIT_KEY]: key };
      result.observe(queued, r.queued, at);
      result.observe(limited, r.inFlight, at);
      if (r.remainingRequests !== null) result.observe(remainingRequests, r.remainingRequests, at);
      if (r.remainingTokens !== null) result.observe(remainingTokens, r.remainingTokens, at);
      result.observe(rateLimited, r.rateLimited, at);
      result.observe(refused, r.refused, at);
    }
  });
}
