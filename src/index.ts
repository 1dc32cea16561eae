export type { BudgetsStats } from './budgets/service.js';
export type { VerifyWebhookOptions } from './budgets/signature.js';
export { verifyWebhook } from './budgets/signature.js';
export { isRetryable } from './errors/classify.js';
export {
  ContextWindowExceededError,
  InvalidOptionError,
  isLlmMeterError,
  LlmMeterError,
} from './errors/errors.js';
export { createMeter } from './meter.js';
export type { GatewayKey, ProxyOptions, ProxyStats, ProxyTimeouts, RunningProxy } from './proxy/index.js';
export { generateGatewayKey, startProxy } from './proxy/index.js';
export type {
  Attribution,
  CallCost,
  CallRecord,
  CallTiming,
  ErrorType,
  FigureSource,
  Operation,
  Outcome,
  TokenUsage,
} from './record.js';
export { ERROR_TYPES } from './record.js';
export type {
  ChatMessage,
  CircuitBreaker,
  CircuitBreakerOptions,
  CircuitChange,
  CircuitFetchOptions,
  CircuitSnapshot,
  CircuitState,
  FitOptions,
  FitResult,
  FitStrategy,
  GuardOptions,
  Guards,
  RateLimiter,
  RateLimiterOptions,
  RateLimiterSnapshot,
  RetryEvent,
  RetryPolicy,
} from './resilience/index.js';
export {
  backoffDelay,
  CircuitOpenError,
  createCircuitBreaker,
  createGuards,
  createRateLimiter,
  fitToContext,
  isCircuitOpenError,
  withCircuitBreaker,
  withGuards,
  withRateLimiter,
  withRetry,
} from './resilience/index.js';
export type { StoreStats } from './store/types.js';
export type { AttributionInput, FetchLike, Meter, MeterOptions, MeterStats, ModelPrice } from './types.js';
