import { newId } from './plan.js';
import type { Behavior, Fault } from './types.js';
import type { HttpReply } from './wire.js';

/** Faults answered with an HTTP error before any work; the others shape the stream. */
export const HTTP_FAULTS: ReadonlySet<Fault> = new Set([
  'rate_limit',
  'server_error',
  'overloaded',
  'bad_request',
  'context_length',
  'auth',
  'forbidden',
  'not_found',
  'content_filter',
]);

interface OpenAIErrorSpec {
  status: number;
  message: string;
  type: string | null;
  param: string | null;
  code: string | null;
}

// https://platform.openai.com/docs/guides/error-codes
function openaiSpec(fault: Fault, model: string): OpenAIErrorSpec | null {
  switch (fault) {
    case 'rate_limit':
      return {
        status: 429,
        message: `Rate limit reached for ${model} on requests per min (RPM): Limit 500, Used 500, Requested 1.`,
        type: 'requests',
        param: null,
        code: 'rate_limit_exceeded',
      };
    case 'server_error':
      return {
        status: 500,
        message: 'The server had an error while processing your request. Sorry about that!',
        type: 'server_error',
        param: null,
        code: null,
      };
    case 'overloaded':
      return {
        status: 503,
        message: 'The engine is currently overloaded, please try again later.',
        type: 'server_error',
        param: null,
        code: null,
      };
    case 'bad_request':
      return {
        status: 400,
        message: 'Invalid request (simulated).',
        type: 'invalid_request_error',
        param: null,
        code: null,
      };
    case 'context_length':
      return {
        status: 400,
        message:
          "This model's maximum context length is 128000 tokens. However, your messages resulted in 250000 tokens. Please reduce the length of the messages.",
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      };
    case 'auth':
      return {
        status: 401,
        message:
          'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      };
    case 'forbidden':
      return {
        status: 403,
        message: `Project does not have access to model ${model}.`,
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      };
    case 'not_found':
      return {
        status: 404,
        message: `The model \`${model}\` does not exist or you do not have access to it.`,
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      };
    case 'content_filter':
      return {
        status: 400,
        message: 'The response was filtered due to the prompt triggering the content management policy.',
        type: null,
        param: 'prompt',
        code: 'content_filter',
      };
    default:
      return null;
  }
}

export function openaiErrorBody(message: string, type: string | null, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

export function openaiError(fault: Fault, b: Behavior, model: string, azure: boolean): HttpReply | null {
  const spec = openaiSpec(fault, model);
  if (!spec) return null;
  const requestId = newId('req_', 16);
  if (azure && fault === 'rate_limit') {
    // Azure classic throttling: the reset comes as a token-window header, without retry-after.
    return {
      status: 429,
      headers: {
        'x-request-id': requestId,
        'apim-request-id': requestId,
        'x-rate-limit-reset-tokens': String(b.retryAfterS),
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-remaining-tokens': '0',
      },
      body: {
        error: {
          code: '429',
          message: `Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${b.retryAfterS} second.`,
        },
      },
    };
  }
  const headers: Record<string, string> = { 'x-request-id': requestId };
  if (fault === 'rate_limit') {
    Object.assign(headers, {
      'retry-after': String(b.retryAfterS),
      'retry-after-ms': String(Math.round(b.retryAfterS * 1000)),
      'x-ratelimit-limit-requests': '500',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': `${b.retryAfterS}s`,
      'x-ratelimit-limit-tokens': '30000000',
      'x-ratelimit-remaining-tokens': '30000000',
      'x-ratelimit-reset-tokens': '0s',
    });
  }
  return {
    status: spec.status,
    headers,
    body: { error: { message: spec.message, type: spec.type, param: spec.param, code: spec.code } },
  };
}

// https://docs.anthropic.com/en/api/errors
function anthropicSpec(
  fault: Fault,
  model: string,
): { status: number; type: string; message: string } | null {
  switch (fault) {
    case 'rate_limit':
      return {
        status: 429,
        type: 'rate_limit_error',
        message: 'This request would exceed the rate limit for your organization of 50 requests per minute.',
      };
    case 'server_error':
      return { status: 500, type: 'api_error', message: 'Internal server error' };
    case 'overloaded':
      return { status: 529, type: 'overloaded_error', message: 'Overloaded' };
    case 'bad_request':
      return { status: 400, type: 'invalid_request_error', message: 'Invalid request (simulated).' };
    case 'context_length':
      return {
        status: 400,
        type: 'invalid_request_error',
        message: 'prompt is too long: 250000 tokens > 200000 maximum',
      };
    case 'auth':
      return { status: 401, type: 'authentication_error', message: 'invalid x-api-key' };
    case 'forbidden':
      return {
        status: 403,
        type: 'permission_error',
        message: 'Your API key does not have permission to use the specified resource.',
      };
    case 'not_found':
      return { status: 404, type: 'not_found_error', message: `model: ${model}` };
    default:
      return null;
  }
}

export function anthropicErrorBody(type: string, message: string, requestId: string) {
  return { type: 'error', error: { type, message }, request_id: requestId };
}

export function anthropicError(fault: Fault, b: Behavior, model: string): HttpReply | null {
  const spec = anthropicSpec(fault, model);
  if (!spec) return null;
  const requestId = newId('req_011', 12);
  const headers: Record<string, string> = { 'request-id': requestId };
  if (fault === 'rate_limit') {
    Object.assign(headers, {
      'retry-after': String(b.retryAfterS),
      'anthropic-ratelimit-requests-limit': '50',
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-requests-reset': new Date(Date.now() + b.retryAfterS * 1000).toISOString(),
    });
  }
  return { status: spec.status, headers, body: anthropicErrorBody(spec.type, spec.message, requestId) };
}
