export { backoffDelay, retryTiming } from '../common/retry-timing.js';
export {
  type CircuitBreaker,
  type CircuitPermit,
  createCircuitBreaker,
  withCircuitBreaker,
} from './circuit-breaker.js';
export { classifyError, classifyStatus, type Verdict } from './classify.js';
export { fitToContext } from './context.js';
export { CircuitOpenError, isCircuitOpenError } from './errors.js';
export { createGuards, guardedBase, withGuards } from './guards.js';
export {
  createRateLimiter,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitGrant,
  withRateLimiter,
} from './rate-limiter.js';
export { withRetry } from './retry.js';
export type * from './types.js';
