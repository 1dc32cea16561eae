import { type Plan, totalOutputTokens } from './plan.js';
import type { TimingReport } from './types.js';
import type { Json } from './wire.js';

/*
 * Server-reported timings of OpenAI-compatible servers, from the simulator's planned phases:
 * Groq `usage.*_time` in seconds (https://console.groq.com/docs/api-reference#chat-create),
 * llama.cpp server `timings` (tools/server/README.md), vLLM `metrics` (per request).
 */

const seconds = (ms: number): number => ms / 1000;
const perSecond = (n: number, ms: number): number | null => (ms > 0 ? (n * 1000) / ms : null);
const decodeMs = (plan: Plan): number => plan.reasoningMs + plan.generationMs;

function groqTimes(plan: Plan): Json {
  const prompt = seconds(plan.prefillMs);
  const completion = seconds(decodeMs(plan));
  return {
    queue_time: seconds(plan.queueMs),
    prompt_time: prompt,
    completion_time: completion,
    total_time: prompt + completion,
  };
}

function llamacppTimings(plan: Plan): Json {
  const promptN = plan.inputTokens - plan.cacheReadTokens;
  const predictedN = totalOutputTokens(plan);
  const predictedMs = decodeMs(plan);
  return {
    cache_n: plan.cacheReadTokens,
    prompt_n: promptN,
    prompt_ms: plan.prefillMs,
    prompt_per_token_ms: promptN > 0 ? plan.prefillMs / promptN : null,
    prompt_per_second: perSecond(promptN, plan.prefillMs),
    predicted_n: predictedN,
    predicted_ms: predictedMs,
    predicted_per_token_ms: predictedN > 0 ? predictedMs / predictedN : null,
    predicted_per_second: perSecond(predictedN, predictedMs),
  };
}

/** The engine's first token is the first one decoded, reasoning included: decoding is all after it. */
function vllmMetrics(plan: Plan): Json {
  return {
    queue_time_ms: plan.queueMs,
    time_to_first_token_ms: plan.queueMs + plan.prefillMs,
    generation_time_ms: decodeMs(plan),
  };
}

/** Fields merged into a non-streamed `usage`. */
export const usageReport = (report: TimingReport, plan: Plan): Json =>
  report === 'groq' ? groqTimes(plan) : {};

/**
 * The `usage` object as each server shapes it. llama.cpp (before `prompt_tokens_details`) sends
 * the three totals only, its cache hits being `timings.cache_n`; DeepSeek sends its cache hits as
 * `prompt_cache_hit_tokens` / `prompt_cache_miss_tokens` (https://api-docs.deepseek.com/guides/kv_cache).
 */
export function reportedUsage(report: TimingReport, plan: Plan, usage: Json): Json {
  if (report === 'llamacpp') {
    return {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.total_tokens,
    };
  }
  if (report === 'deepseek') {
    const { prompt_tokens_details: _details, ...rest } = usage;
    return {
      ...rest,
      prompt_cache_hit_tokens: plan.cacheReadTokens,
      prompt_cache_miss_tokens: plan.inputTokens - plan.cacheReadTokens,
    };
  }
  return usage;
}

/** Top-level fields of a non-streamed body. */
export function bodyReport(report: TimingReport, plan: Plan): Json {
  if (report === 'llamacpp') return { timings: llamacppTimings(plan) };
  if (report === 'vllm') return { metrics: vllmMetrics(plan) };
  return {};
}

/** Top-level fields of the first stream chunk (Groq names its request there). */
export const firstChunkReport = (report: TimingReport, plan: Plan): Json =>
  report === 'groq' ? { x_groq: { id: groqId(plan) } } : {};

/** Top-level fields of the chunk that carries the finish reason. */
export function finalChunkReport(report: TimingReport, plan: Plan, usage: Json): Json {
  if (report === 'groq') return { x_groq: { id: groqId(plan), usage: { ...usage, ...groqTimes(plan) } } };
  return bodyReport(report, plan);
}

const groqId = (plan: Plan): string => `req_${plan.id.slice(-24)}`;
