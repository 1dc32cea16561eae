import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokensRoute, messagesRoute } from './anthropic.js';
import { checkBehavior, mergeBehavior } from './behavior.js';
import { chatRoute } from './chat.js';
import { completionsRoute } from './completions.js';
import { embeddingsRoute } from './embeddings.js';
import { anthropicErrorBody, openaiErrorBody } from './faults.js';
import { GEMINI_METHODS, type GeminiMethod, geminiErrorBody, geminiRoute } from './gemini.js';
import { type OllamaEndpoint, ollamaRoute } from './ollama.js';
import { newId } from './plan.js';
import { type Exchange, now, respond, sendJson } from './respond.js';
import { responsesRoute } from './responses.js';
import { seededRandom } from './sse.js';
import type { Behavior, SimCall, SimEndpoint, SimOptions, SimProvider, Simulator } from './types.js';
import { isObject, type Json, type Prepared, type RouteInput } from './wire.js';

interface Route {
  provider: SimProvider;
  endpoint: SimEndpoint;
  deployment?: string;
  /** A model named by the path (Gemini). */
  model?: string;
  prepare?: (input: RouteInput) => Prepared;
}

const ROUTES: [string, SimEndpoint, (input: RouteInput) => Prepared][] = [
  ['/chat/completions', 'chat', chatRoute],
  ['/responses', 'responses', responsesRoute],
  ['/embeddings', 'embeddings', embeddingsRoute],
  ['/completions', 'completions', completionsRoute],
  ['/messages/count_tokens', 'count_tokens', countTokensRoute],
  ['/messages', 'messages', messagesRoute],
];

const AZURE_DEPLOYMENT = /\/openai\/deployments\/([^/]+)\//;
const DEFAULT_AZURE_MODEL = 'gpt-4o-2024-08-06';

// `…/models/{model}:{method}`, also Vertex AI's tuned-model `…/endpoints/{id}:{method}`.
const GEMINI_PATH = /\/(?:models|tunedModels|endpoints)\/([^/:]+):([A-Za-z]+)$/;
const VERTEX_PATH = /\/projects\/[^/]+\/locations\/|\/publishers\//;
const GEMINI_ENDPOINTS: Record<GeminiMethod, SimEndpoint> = {
  generateContent: 'generate_content',
  streamGenerateContent: 'generate_content',
  embedContent: 'embed_content',
  batchEmbedContents: 'batch_embed_contents',
  countTokens: 'count_tokens',
};
// Before the OpenAI suffixes: `/api/embeddings` would otherwise be OpenAI's `/embeddings`.
const OLLAMA_ROUTES: [string, OllamaEndpoint][] = [
  ['/api/chat', 'chat'],
  ['/api/generate', 'generate'],
  ['/api/embed', 'embed'],
  ['/api/embeddings', 'embeddings'],
];

function geminiRouteFor(path: string): Route | null {
  const match = GEMINI_PATH.exec(path);
  if (!match) return null;
  const provider = VERTEX_PATH.test(path) ? 'vertex' : 'gemini';
  const method = match[2] as GeminiMethod;
  if (!GEMINI_METHODS.includes(method)) return { provider, endpoint: 'unknown' };
  return {
    provider,
    endpoint: GEMINI_ENDPOINTS[method],
    model: decodeURIComponent(match[1]!),
    prepare: geminiRoute(method, provider === 'vertex'),
  };
}

/**
 * By path suffix, so any prefix works: `/v1/…`, `/openai/v1/…`, `/openai/deployments/{name}/…`;
 * Gemini by its `models/{model}:{method}` tail, Ollama by `/api/{chat,generate,embed,embeddings}`.
 */
function route(method: string, path: string): Route {
  const trimmed = path.replace(/\/+$/, '');
  if (method === 'POST') {
    const gemini = geminiRouteFor(trimmed);
    if (gemini) return gemini;
    for (const [suffix, endpoint] of OLLAMA_ROUTES) {
      if (trimmed.endsWith(suffix)) return { provider: 'ollama', endpoint, prepare: ollamaRoute(endpoint) };
    }
  }
  for (const [suffix, endpoint, prepare] of ROUTES) {
    if (method !== 'POST' || !trimmed.endsWith(suffix)) continue;
    const provider = endpoint === 'messages' || endpoint === 'count_tokens' ? 'anthropic' : 'openai';
    const deployment = provider === 'openai' ? AZURE_DEPLOYMENT.exec(trimmed)?.[1] : undefined;
    if (deployment)
      return { provider: 'azure', endpoint, deployment: decodeURIComponent(deployment), prepare };
    return { provider, endpoint, prepare };
  }
  return { provider: 'openai', endpoint: 'unknown' };
}

/**
 * Azure OpenAI's v1 API (`/openai/v1/…`) names the deployment in the body's `model`: a model
 * listed in `azureDeployments` is one, answered as Azure with the deployment's model.
 * https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle#api-evolution
 */
function azureV1(r: Route, path: string, body: Json, options: SimOptions): Route {
  const model = body.model;
  if (r.provider !== 'openai' || !path.includes('/openai/v1/') || typeof model !== 'string') return r;
  if (options.azureDeployments?.[model] === undefined) return r;
  return { ...r, provider: 'azure', deployment: model };
}

const DATED = /(\d{4}-\d{2}-\d{2}|\d{8})$/;

function responseModel(r: Route, body: Json, options: SimOptions): string {
  if (r.deployment !== undefined) return options.azureDeployments?.[r.deployment] ?? DEFAULT_AZURE_MODEL;
  if (r.model !== undefined) return r.model;
  const requested = typeof body.model === 'string' ? body.model : 'unknown';
  if (!options.datedModels || DATED.test(requested)) return requested;
  return requested + (r.provider === 'anthropic' ? '-20241022' : '-2024-08-06');
}

const GOOGLE_STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 404: 'NOT_FOUND', 500: 'INTERNAL' };

function errorBody(provider: SimProvider, status: number, type: string, message: string): unknown {
  if (provider === 'anthropic') return anthropicErrorBody(type, message, newId('req_011', 12));
  if (provider === 'gemini' || provider === 'vertex') {
    return geminiErrorBody(status, GOOGLE_STATUS[status] ?? 'UNKNOWN', message);
  }
  if (provider === 'ollama') return { error: message };
  return openaiErrorBody(message, 'invalid_request_error');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function headerRecord(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

const isAbort = (error: unknown): boolean => error instanceof Error && error.name === 'AbortError';

interface Waiter {
  predicate: (call: SimCall) => boolean;
  resolve: (call: SimCall) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export async function startSimulator(options: SimOptions = {}): Promise<Simulator> {
  const initialDefaults = checkBehavior(options.defaults ?? {}, 'options.defaults');
  let defaults: Partial<Behavior> = { ...initialDefaults };
  const queue: Partial<Behavior>[] = [];
  const calls: SimCall[] = [];
  const waiters = new Set<Waiter>();
  const inFlight = new Set<AbortController>();
  let sequence = 0;

  const settle = () => {
    for (const waiter of waiters) {
      const call = calls.find((c) => c.endedAt !== null && waiter.predicate(c));
      if (!call) continue;
      clearTimeout(waiter.timer);
      waiters.delete(waiter);
      waiter.resolve(call);
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = now();
    const enqueued = queue.shift();
    const url = new URL(req.url ?? '/', 'http://simulator');
    const method = req.method ?? 'GET';
    const r = route(method, url.pathname);
    const number = ++sequence;
    const call: SimCall = {
      id: `sim_${number}`,
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: headerRecord(req),
      body: undefined,
      provider: r.provider,
      endpoint: r.endpoint,
      model: null,
      stream: false,
      behavior: mergeBehavior(defaults, enqueued),
      status: 0,
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      queueMs: 0,
      prefillMs: 0,
      reasoningMs: 0,
      generationMs: 0,
      receivedAt,
      headersSentAt: null,
      firstTokenAt: null,
      lastTokenAt: null,
      endedAt: null,
      outcome: null,
      clientClosed: false,
    };
    calls.push(call);

    const controller = new AbortController();
    inFlight.add(controller);
    res.setHeader('x-sim-call-id', call.id);
    res.on('error', () => {});
    res.on('close', () => {
      inFlight.delete(controller);
      if (call.outcome === null) {
        call.outcome = 'client_closed';
        call.clientClosed = true;
      }
      call.endedAt = now();
      controller.abort();
      settle();
    });
    const x: Exchange = {
      res,
      call,
      behavior: call.behavior,
      signal: controller.signal,
      random: seededRandom(number),
    };

    try {
      const raw = await readBody(req);
      if (!r.prepare) {
        const body = errorBody(
          r.provider,
          404,
          'invalid_request_error',
          `Invalid URL (${method} ${url.pathname})`,
        );
        sendJson(x, 404, {}, body, 'fault');
        return;
      }
      let body: Json;
      try {
        const parsed: unknown = raw === '' ? {} : JSON.parse(raw);
        call.body = parsed;
        if (!isObject(parsed)) throw new SyntaxError('not an object');
        body = parsed;
      } catch {
        call.body = raw;
        const message = 'We could not parse the JSON body of your request.';
        sendJson(x, 400, {}, errorBody(r.provider, 400, 'invalid_request_error', message), 'fault');
        return;
      }
      const header = req.headers['x-sim-options'];
      if (typeof header === 'string') {
        try {
          call.behavior = mergeBehavior(
            defaults,
            enqueued,
            checkBehavior(JSON.parse(header), 'x-sim-options'),
          );
          x.behavior = call.behavior;
        } catch (error) {
          const message = `x-sim-options: ${(error as Error).message}`;
          sendJson(x, 400, {}, errorBody(r.provider, 400, 'invalid_request_error', message), 'fault');
          return;
        }
      }
      const target = azureV1(r, url.pathname, body, options);
      call.provider = target.provider;
      const prepared = r.prepare({
        body,
        behavior: call.behavior,
        model: responseModel(target, body, options),
        azure: target.provider === 'azure',
        query: url.searchParams,
      });
      await respond(x, prepared);
    } catch (error) {
      if (isAbort(error) || res.destroyed) return;
      if (res.headersSent) {
        call.outcome = 'fault';
        res.destroy();
        return;
      }
      sendJson(
        x,
        500,
        {},
        errorBody(r.provider, 500, 'api_error', `simulator failure: ${String(error)}`),
        'fault',
      );
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    setDefaults(behavior) {
      defaults = { ...defaults, ...checkBehavior(behavior, 'setDefaults()') };
    },
    enqueue(...behaviors) {
      queue.push(...behaviors.map((b, i) => checkBehavior(b, `enqueue() argument ${i + 1}`)));
    },
    waitForCall(predicate = () => true, timeoutMs = 5000) {
      return new Promise<SimCall>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `waitForCall: no matching call ended within ${timeoutMs} ms (${calls.length} calls seen)`,
            ),
          );
        }, timeoutMs);
        const waiter: Waiter = { predicate, resolve, reject, timer };
        waiters.add(waiter);
        settle();
      });
    },
    reset() {
      calls.length = 0;
      queue.length = 0;
      defaults = { ...initialDefaults };
    },
    async close() {
      for (const controller of inFlight) controller.abort();
      for (const waiter of waiters) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error('waitForCall: simulator closed'));
      }
      waiters.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
