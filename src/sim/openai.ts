import { openaiErrorBody } from './faults.js';
import { newId, type Plan, totalOutputTokens } from './plan.js';
import type { SseEvent } from './sse.js';
import { isObject, type Json } from './wire.js';

// What every OpenAI-shaped endpoint shares: headers, usage, the stream error event and its terminator.

export const FINGERPRINT = 'fp_5e2d5a4b7c';

export function openaiHeaders(plan: Plan, processingMs: number, azure: boolean): Record<string, string> {
  const requestId = newId('req_', 16);
  const headers: Record<string, string> = {
    'x-request-id': requestId,
    'openai-processing-ms': String(Math.round(processingMs)),
    'openai-version': '2020-10-01',
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-remaining-requests': '9999',
    'x-ratelimit-reset-requests': '6ms',
    'x-ratelimit-limit-tokens': '30000000',
    'x-ratelimit-remaining-tokens': String(30_000_000 - plan.inputTokens),
    'x-ratelimit-reset-tokens': '0s',
  };
  if (azure) headers['apim-request-id'] = requestId;
  return headers;
}

export function openaiUsage(plan: Plan): Json {
  const completion = totalOutputTokens(plan);
  return {
    prompt_tokens: plan.inputTokens,
    completion_tokens: completion,
    total_tokens: plan.inputTokens + completion,
    prompt_tokens_details: { cached_tokens: plan.cacheReadTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: plan.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export const SERVER_ERROR_EVENT: SseEvent = {
  data: JSON.stringify(
    openaiErrorBody(
      'The server had an error while processing your request. Sorry about that!',
      'server_error',
    ),
  ),
};

export const DONE: SseEvent = { data: '[DONE]' };

export const streamOptions = (body: Json): Json => (isObject(body.stream_options) ? body.stream_options : {});
