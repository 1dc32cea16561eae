import { EMBEDDING_DIMENSIONS, embed } from './embeddings.js';
import { type Choice, type Finish, inputOnlyPlan, makePlan, type Plan, visibleTokens } from './plan.js';
import type { SseEvent } from './sse.js';
import { countGeminiEmbedInput, countGeminiInput } from './text.js';
import type { Behavior, Fault } from './types.js';
import {
  bodyOnlyWire,
  type HttpReply,
  isObject,
  type Json,
  optionalNumber,
  type Prepared,
  type RouteInput,
  type Wire,
} from './wire.js';

/*
 * Google Gemini, as the Generative Language API (`/v1beta/models/{model}:{method}`) and Vertex AI
 * (`/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`) serve it:
 * https://ai.google.dev/api/generate-content, https://ai.google.dev/api/embeddings,
 * https://ai.google.dev/api/tokens, https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest
 *
 * `usageMetadata.promptTokenCount` includes `cachedContentTokenCount`; `thoughtsTokenCount` is
 * outside `candidatesTokenCount`. A stream's chunks each carry the usage so far (cumulative), the
 * last one the totals with the finish reason. Function calls leave whole, never in pieces.
 */

export type GeminiMethod =
  | 'generateContent'
  | 'streamGenerateContent'
  | 'embedContent'
  | 'batchEmbedContents'
  | 'countTokens';

export const GEMINI_METHODS: readonly GeminiMethod[] = [
  'generateContent',
  'streamGenerateContent',
  'embedContent',
  'batchEmbedContents',
  'countTokens',
];

// https://ai.google.dev/api/generate-content#FinishReason: a function call ends with STOP.
const FINISH: Record<Finish, string> = {
  stop: 'STOP',
  length: 'MAX_TOKENS',
  tool_calls: 'STOP',
  content_filter: 'SAFETY',
};

const BLOCKED_RATINGS = [
  { category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true },
  { category: 'HARM_CATEGORY_HARASSMENT', probability: 'NEGLIGIBLE' },
];

export function geminiErrorBody(code: number, status: string, message: string, details?: Json[]) {
  return { error: { code, message, status, ...(details ? { details } : {}) } };
}

// https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
function geminiError(fault: Fault, b: Behavior, model: string, vertex: boolean): HttpReply | null {
  const reply = (status: number, code: string, message: string, details?: Json[]): HttpReply => ({
    status,
    headers: { vary: 'Origin, X-Origin, Referer' },
    body: geminiErrorBody(status, code, message, details),
  });
  switch (fault) {
    case 'rate_limit':
      // No Retry-After header: the delay is in the body's RetryInfo.
      return reply(
        429,
        'RESOURCE_EXHAUSTED',
        'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
        [
          {
            '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
            violations: [
              {
                quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
                quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
                quotaDimensions: { location: 'global', model },
                quotaValue: '10',
              },
            ],
          },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${b.retryAfterS}s` },
        ],
      );
    case 'server_error':
      return reply(
        500,
        'INTERNAL',
        'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
      );
    case 'overloaded':
      return reply(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
    case 'bad_request':
      return reply(400, 'INVALID_ARGUMENT', 'Invalid request (simulated).');
    case 'context_length':
      return reply(
        400,
        'INVALID_ARGUMENT',
        'The input token count (250000) exceeds the maximum number of tokens allowed (1048576).',
      );
    case 'auth':
      // The Generative Language API answers a bad key with a 400; Vertex AI with a 401.
      return vertex
        ? reply(
            401,
            'UNAUTHENTICATED',
            'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
          )
        : reply(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [
            {
              '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
              reason: 'API_KEY_INVALID',
              domain: 'googleapis.com',
              metadata: { service: 'generativelanguage.googleapis.com' },
            },
          ]);
    case 'forbidden':
      return reply(403, 'PERMISSION_DENIED', 'The caller does not have permission');
    case 'not_found':
      return reply(
        404,
        'NOT_FOUND',
        `models/${model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`,
      );
    default:
      // content_filter is a finish reason in a 200 (filterInBody).
      return null;
  }
}

function headers(processingMs: number): Record<string, string> {
  // Google front ends report their processing time: `server-timing: gfet4t7; dur=<ms>`.
  return { 'server-timing': `gfet4t7; dur=${Math.round(processingMs)}`, vary: 'Origin, X-Origin, Referer' };
}

function usageMetadata(plan: Plan, visible: number): Json {
  const usage: Json = { promptTokenCount: plan.inputTokens };
  if (visible > 0) usage.candidatesTokenCount = visible;
  usage.totalTokenCount = plan.inputTokens + visible + plan.reasoningTokens;
  if (plan.cacheReadTokens > 0) usage.cachedContentTokenCount = plan.cacheReadTokens;
  usage.promptTokensDetails = [{ modality: 'TEXT', tokenCount: plan.inputTokens }];
  if (plan.cacheReadTokens > 0) {
    usage.cacheTokensDetails = [{ modality: 'TEXT', tokenCount: plan.cacheReadTokens }];
  }
  if (plan.reasoningTokens > 0) usage.thoughtsTokenCount = plan.reasoningTokens;
  return usage;
}

function parts(choice: Choice): Json[] {
  return choice.blocks.map((block) =>
    block.kind === 'text' ? { text: block.text } : { functionCall: { name: block.name, args: block.input } },
  );
}

function candidate(index: number, content: Json[] | null, finish: string | null, filtered: boolean): Json {
  return {
    content: content && content.length > 0 ? { parts: content, role: 'model' } : { role: 'model' },
    ...(finish ? { finishReason: finish } : {}),
    ...(filtered ? { safetyRatings: BLOCKED_RATINGS } : {}),
    index,
  };
}

function generateWire(input: RouteInput, stream: boolean, vertex: boolean): Wire {
  const response = (plan: Plan, candidates: Json[], visible: number): Json => ({
    candidates,
    usageMetadata: usageMetadata(plan, visible),
    modelVersion: plan.model,
    ...(vertex ? { createTime: new Date(plan.created * 1000).toISOString() } : {}),
    responseId: plan.id,
  });
  const event = (value: Json): SseEvent => ({ data: JSON.stringify(value) });
  const array = stream && input.query.get('alt') !== 'sse';
  return {
    filterInBody: true,
    framing: array ? 'json-array' : 'sse',
    headers: (_plan, processingMs) => headers(processingMs),
    error: (fault, behavior, plan) => {
      const reply = geminiError(fault, behavior, plan.model, vertex);
      // A JSON-array stream refused before it starts still answers an array: `[{"error":…}]`.
      return reply && array ? { ...reply, body: [reply.body] } : reply;
    },
    body: (plan) => {
      const filtered = plan.finish === 'content_filter';
      const candidates = plan.choices.map((choice, index) =>
        candidate(index, parts(choice), FINISH[plan.finish], filtered),
      );
      return response(plan, candidates, visibleTokens(plan));
    },
    start: () => [],
    step: (plan, step) => {
      const candidates: Json[] = [];
      plan.choices.forEach((choice, index) => {
        const piece = choice.pieces[step]!;
        const block = choice.blocks[piece.block]!;
        if (block.kind === 'text') candidates.push(candidate(index, [{ text: piece.text }], null, false));
        else if (piece.last) {
          candidates.push(
            candidate(index, [{ functionCall: { name: block.name, args: block.input } }], null, false),
          );
        }
      });
      if (candidates.length === 0) return [];
      return [event(response(plan, candidates, (step + 1) * plan.choices.length))];
    },
    end: (plan) => {
      const filtered = plan.finish === 'content_filter';
      const candidates = plan.choices.map((_, index) =>
        candidate(index, [{ text: '' }], FINISH[plan.finish], filtered),
      );
      return [event(response(plan, candidates, visibleTokens(plan)))];
    },
    errorEvent: () => [
      event(
        geminiErrorBody(
          500,
          'INTERNAL',
          'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
        ),
      ),
    ],
  };
}

function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((tool) => {
    const declarations =
      isObject(tool) && Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations : [];
    return declarations.flatMap((d) => (isObject(d) && typeof d.name === 'string' ? [d.name] : []));
  });
}

function contentText(content: unknown): string {
  const list = isObject(content) && Array.isArray(content.parts) ? content.parts : [];
  return list.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('');
}

/** The route for one Gemini method; `vertex` when the path is Vertex AI's. */
export function geminiRoute(method: GeminiMethod, vertex: boolean): (input: RouteInput) => Prepared {
  return (input) => {
    const { body } = input;
    const error: Wire['error'] = (fault, behavior, plan) => geminiError(fault, behavior, plan.model, vertex);
    const head: Wire['headers'] = (_plan, ms) => headers(ms);
    if (method === 'countTokens') {
      const plan = inputOnlyPlan(input, countGeminiInput(body));
      const wire = bodyOnlyWire(
        (p) => ({
          totalTokens: p.inputTokens,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: p.inputTokens }],
        }),
        head,
        error,
        true,
      );
      return { plan, stream: false, wire };
    }
    if (method === 'embedContent' || method === 'batchEmbedContents') {
      const plan = inputOnlyPlan(input, countGeminiEmbedInput(body));
      const dimensions = (r: Json) => optionalNumber(r.outputDimensionality) ?? EMBEDDING_DIMENSIONS;
      const wire = bodyOnlyWire(
        () =>
          method === 'embedContent'
            ? { embedding: { values: embed(contentText(body.content), dimensions(body)) } }
            : {
                embeddings: (Array.isArray(body.requests) ? body.requests : []).map((r) => {
                  const request = isObject(r) ? r : {};
                  return { values: embed(contentText(request.content), dimensions(request)) };
                }),
              },
        head,
        error,
        true,
      );
      return { plan, stream: false, wire };
    }
    const config = isObject(body.generationConfig) ? body.generationConfig : {};
    const plan = makePlan({
      behavior: input.behavior,
      model: input.model,
      inputTokens: countGeminiInput(body),
      maxTokens: optionalNumber(config.maxOutputTokens),
      choices: optionalNumber(config.candidateCount) ?? 1,
      toolNames: toolNames(body.tools),
      cacheWrites: false,
      idPrefix: '',
    });
    const stream = method === 'streamGenerateContent';
    return { plan, stream, wire: generateWire(input, stream, vertex) };
  };
}
