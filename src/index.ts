export { isRetryable } from './errors/classify.js';
export {
  ContextWindowExceededError,
  InvalidOptionError,
  isLlmMeterError,
  LlmMeterError,
} from './errors/errors.js';
export { createMeter } from './meter.js';
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
export type { AttributionInput, FetchLike, Meter, MeterOptions, MeterStats, ModelPrice } from './types.js';
