import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidOptionError } from '../errors/errors.js';
import type { FetchLike } from '../fetch/request.js';
import { createMeter } from '../meter.js';
import { undici } from '../net/undici.js';
import { bool, nonNegative, positiveInt } from '../options.js';
import { openaiAdapter } from '../providers/openai.js';
import { DEFAULT_ADAPTERS, detect } from '../providers/registry.js';
import type { ProviderAdapter } from '../providers/types.js';
import { createCircuitBreaker, withCircuitBreaker } from '../resilience/circuit-breaker.js';
import { createGuards, withGuards } from '../resilience/guards.js';
import { createRateLimiter, withRateLimiter } from '../resilience/rate-limiter.js';
import { readBody, unreadBodyHeaders } from './body.js';
import { attributionFrom, clientHeaders, upstreamHeaders } from './headers.js';
import { createKeyring, type Keyring, keyAttribution, presentedKey, readKeysFile, swapKey } from './keys.js';
import { type ClientLimits, clientOf, createClientLimits } from './limits.js';
import { checkBindHost, perimeterRefusal } from './perimeter.js';
import { type Routing, resolveRoute } from './routes.js';
import { resolveTimeouts, startCallTimer, type TimeoutKind, timeoutMessage } from './timeouts.js';
import type { GatewayKey, ProxyOptions, ProxyStats, RunningProxy } from './types.js';

const MiB = 1024 * 1024;

interface Exchange {
  controller: AbortController;
  done: Promise<void>;
}

/** Methods fetch refuses to send (Fetch standard: forbidden methods). */
const UNSENDABLE = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** Content types whose first bytes the client should get as soon as they exist. */
const STREAMING = /text\/event-stream|application\/(?:x-)?ndjson|application\/jsonl/i;

function checkUpstreams(upstreams: Record<string, string> | undefined): Map<string, URL> {
  if (typeof upstreams !== 'object' || upstreams === null || Object.keys(upstreams).length === 0) {
    throw new InvalidOptionError(
      'Expected `upstreams` to name at least one upstream, e.g. { openai: "https://api.openai.com" }.',
    );
  }
  const out = new Map<string, URL>();
  for (const [name, base] of Object.entries(upstreams)) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      throw new InvalidOptionError(
        `Expected upstream names to be path segments ([A-Za-z0-9._-]), got "${name}".`,
      );
    }
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new InvalidOptionError(`Expected \`upstreams.${name}\` to be a URL.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidOptionError(`Expected \`upstreams.${name}\` to be an http(s) URL.`);
    }
    if (url.search || url.hash || url.username || url.password) {
      throw new InvalidOptionError(
        `Expected \`upstreams.${name}\` to have no query, fragment or credentials.`,
      );
    }
    out.set(name, url);
  }
  return out;
}

function keyringFor(options: ProxyOptions): Keyring | null {
  if (!options.requireKey) return null;
  const keys: Record<string, GatewayKey> = {
    ...(options.keysFile ? readKeysFile(options.keysFile) : {}),
    ...(options.keys ?? {}),
  };
  const ring = createKeyring(keys);
  if (ring.size === 0)
    throw new InvalidOptionError(
      'Expected `keys` or `keysFile` to hold gateway keys when `requireKey` is set.',
    );
  return ring;
}

function hasAttribution(input: object): boolean {
  for (const _ in input) return true;
  return false;
}

function causeCode(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * The answer to a request refused on its target or its key: a hostile target (400) first, then a
 * missing or unknown gateway key (401), then a target no upstream serves (404), so that a client
 * without a key learns nothing of the routes.
 */
function refusalFor(
  routing: Routing,
  unknownKey: boolean,
): { status: number; type: string; message: string } {
  if ('refused' in routing && (routing.refused.status === 400 || !unknownKey)) {
    const { status, message } = routing.refused;
    return { status, type: status === 400 ? 'invalid_request_error' : 'not_found_error', message };
  }
  return {
    status: 401,
    type: 'authentication_error',
    message: 'Invalid gateway key: this gateway accepts only its own keys.',
  };
}

/** Resolves when `res` can take more, is gone, or the call was aborted (a timeout fired meanwhile). */
function drainedOrAborted(res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done);
  });
}

/**
 * Ends a metered response body the gateway stopped reading, so that its call ends (and settles
 * its budget reservation) through the meter's normal path. After a timeout the aborted upstream
 * body fails on the next read with the timeout, which the meter records as such; otherwise
 * cancelling it records what was streamed so far as `cancelled`.
 */
async function endBody(reader: ReadableStreamDefaultReader<Uint8Array>, timedOut: boolean): Promise<void> {
  try {
    // Bounded: an aborted body fails at once; one that had already arrived whole is cancelled below.
    for (let i = 0; timedOut && i < 3; i++) if ((await reader.read()).done) return;
  } catch {
    return;
  }
  await reader.cancel(new DOMException('The gateway client went away.', 'AbortError')).catch(() => {});
}

/**
 * The gateway: a reverse proxy that gives clients in any language the metering of `meter.fetch`
 * by changing their base URL. Each call goes through `meter.wrapFetch(undici fetch)` (records,
 * spans, store and budgets alike); responses stream back chunk by chunk with backpressure; a
 * client that disconnects aborts its upstream call at once.
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const upstreams = checkUpstreams(options.upstreams);
  const keyring = keyringFor(options);
  const timeouts = resolveTimeouts(options.timeouts);
  const maxBody = positiveInt('maxRequestBodyBytes', options.maxRequestBodyBytes, 32 * MiB);
  const perClient = {
    connections: positiveInt('maxConnectionsPerClient', options.maxConnectionsPerClient, 512),
    bodyBytes: positiveInt('maxBodyBytesPerClient', options.maxBodyBytesPerClient, 2 * maxBody),
  };
  const bodyBytesTotal = positiveInt('maxBodyBytesInFlight', options.maxBodyBytesInFlight, 8 * maxBody);
  if (perClient.bodyBytes < maxBody) {
    throw new InvalidOptionError(
      'Expected `maxBodyBytesPerClient` to be at least `maxRequestBodyBytes` (one whole body must fit).',
    );
  }
  if (bodyBytesTotal < perClient.bodyBytes) {
    throw new InvalidOptionError('Expected `maxBodyBytesInFlight` to be at least `maxBodyBytesPerClient`.');
  }
  const limits: ClientLimits = createClientLimits({
    connectionsPerClient: perClient.connections,
    bodyBytesPerClient: perClient.bodyBytes,
    bodyBytesTotal,
  });
  const connections = positiveInt('connections', options.connections, 256);
  const graceMs = nonNegative('shutdownGraceMs', options.shutdownGraceMs, 10_000, { unit: 'milliseconds' });
  const insecureNoAuth = bool('insecureNoAuth', options.insecureNoAuth, false);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8788;
  const log = options.logger ?? (() => {});
  if (!keyring) {
    checkBindHost(host, insecureNoAuth, options.logger ?? ((m) => process.emitWarning(m, 'LlmMeterWarning')));
  }

  const ownMeter = !options.meter;
  const meter = options.meter ?? createMeter(options.meterOptions);

  // Keep-alive connections, one request at a time each (no pipelining: one slow generation would
  // hold up every call queued behind it). The gateway's own timers enforce the timeouts, with
  // errors that say which one fired; undici's are off so that they never fire first.
  const { Agent, fetch: undiciFetch } = undici();
  const agent = new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: timeouts.connectMs },
  });
  const base: FetchLike = (input, init) =>
    undiciFetch(input as string, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;

  // Beneath the meter, so that what they answer is recorded like a provider's answer.
  let below = base;
  const limiter = options.rateLimiter ? createRateLimiter(options.rateLimiter) : null;
  if (limiter) below = withRateLimiter(below, limiter, options.rateLimiter);
  const breaker = options.circuitBreaker ? createCircuitBreaker(options.circuitBreaker) : null;
  if (breaker) below = withCircuitBreaker(below, breaker, { onOpen: 'respond' });
  // Guards amend the body before metering and refuse beneath the meter (withGuards).
  const metered = options.guards
    ? withGuards(meter, createGuards(options.guards), below)
    : meter.wrapFetch(below);

  const exchanges = new Set<Exchange>();
  const stats = { requests: 0, gatewayErrors: 0 };
  let closing = false;

  function adapterFor(url: string, method: string): ProviderAdapter {
    try {
      return detect(DEFAULT_ADAPTERS, new URL(url), method, new Headers())?.adapter ?? openaiAdapter;
    } catch {
      return openaiAdapter;
    }
  }

  /** An answer of the gateway's own, in the provider's error shape. */
  function answer(
    res: ServerResponse,
    adapter: ProviderAdapter,
    status: number,
    type: string,
    message: string,
    headers: OutgoingHttpHeaders = {},
  ): void {
    stats.gatewayErrors++;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = JSON.stringify(adapter.errorBody(type, `${message} (llm-meter gateway)`));
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(closing ? { connection: 'close' } : {}),
      ...headers,
    });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const guessed = () => adapterFor(`http://gateway${target.startsWith('/') ? target : '/'}`, method);
    // Everything that can be refused on the request line and headers is, before any body byte is read.
    const refused = keyring ? null : perimeterRefusal(req.headers, insecureNoAuth);
    if (refused) {
      answer(res, guessed(), refused.status, refused.type, refused.message, unreadBodyHeaders(req));
      return;
    }
    if (closing) {
      answer(res, guessed(), 503, 'overloaded_error', 'The gateway is shutting down.', {
        connection: 'close',
      });
      return;
    }
    if (limits.overCap(req.socket)) {
      answer(
        res,
        guessed(),
        429,
        'rate_limit_error',
        `Too many connections from one client: at most ${perClient.connections}.`,
        { connection: 'close', 'retry-after': '1' },
      );
      return;
    }
    if (UNSENDABLE.has(method)) {
      answer(
        res,
        guessed(),
        405,
        'invalid_request_error',
        `The gateway does not forward ${method} requests.`,
        {
          ...unreadBodyHeaders(req),
        },
      );
      return;
    }
    const routing = resolveRoute(target, upstreams);
    const headers = upstreamHeaders(req.headers);
    // With keys required, a client without one learns nothing more than that (not which routes exist).
    const presented = keyring ? presentedKey(headers) : null;
    const entry = presented && keyring ? keyring.lookup(presented.value) : null;
    if (!('route' in routing) || (keyring && !entry)) {
      const { status, type, message } = refusalFor(routing, keyring !== null && entry === null);
      const shape = 'route' in routing ? adapterFor(routing.route.url, method) : guessed();
      answer(res, shape, status, type, message, unreadBodyHeaders(req));
      return;
    }
    const { route } = routing;
    let known: ProviderAdapter | null = null;
    const adapter = () => (known ??= adapterFor(route.url, method));

    let attribution = attributionFrom(req.headers);
    if (keyring && presented && entry) {
      const providerKey = entry.providerKeys[route.upstream];
      if (!providerKey) {
        answer(
          res,
          adapter(),
          403,
          'permission_error',
          `This gateway key has no access to upstream "${route.upstream}".`,
          unreadBodyHeaders(req),
        );
        return;
      }
      swapKey(headers, presented, providerKey);
      // The key's identity wins over headers the client could set to anything.
      attribution = keyAttribution(entry, attribution);
    }

    const controller = new AbortController();
    let finish!: () => void;
    const exchange: Exchange = { controller, done: new Promise<void>((r) => (finish = r)) };
    exchanges.add(exchange);
    let clientGone = false;
    let timedOut: TimeoutKind | null = null;
    const timer = startCallTimer(timeouts, (kind, ms) => {
      if (controller.signal.aborted) return;
      timedOut = kind;
      controller.abort(new DOMException(timeoutMessage(kind, ms), 'TimeoutError'));
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        controller.abort();
      }
      timer.stop();
      exchanges.delete(exchange);
      finish();
    });

    const client = clientOf(req.socket);
    let reading: ReturnType<typeof readBody> | null = null;
    // Whatever way this exchange ends, a metered body not read to its end is ended here: the call
    // is recorded and its budget reservation settled, never left open.
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    let response: Response | null = null;
    let consumed = false;
    try {
      let body: Buffer | undefined;
      if (method !== 'GET' && method !== 'HEAD') {
        const expectsContinue = /^100-continue$/i.test(req.headers.expect ?? '');
        reading = readBody(
          req,
          maxBody,
          (bytes) => limits.charge(client, bytes),
          () => expectsContinue && res.writeContinue(),
        );
        const read = await reading.done;
        if ('gone' in read || clientGone) return;
        if ('refused' in read) {
          if (read.refused === 'too_large') {
            answer(
              res,
              adapter(),
              413,
              'request_too_large',
              `Request bodies are limited to ${maxBody} bytes.`,
              {
                connection: 'close',
              },
            );
          } else {
            answer(
              res,
              adapter(),
              429,
              'rate_limit_error',
              read.refused === 'client'
                ? `Too many request-body bytes in flight from one client: at most ${perClient.bodyBytes}.`
                : `Too many request-body bytes in flight: at most ${bodyBytesTotal}.`,
              { connection: 'close', 'retry-after': '1' },
            );
          }
          return;
        }
        body = read.body;
      }

      const init: RequestInit = {
        method,
        headers,
        body: body as BodyInit | undefined,
        signal: controller.signal,
      };
      try {
        // Without attribution there is nothing to scope: skip the AsyncLocalStorage run.
        response = await (hasAttribution(attribution)
          ? meter.run(attribution, () => metered(route.url, init))
          : metered(route.url, init));
      } catch (error) {
        if (clientGone) return;
        if (timedOut !== null) {
          answer(res, adapter(), 504, 'timeout', timeoutMessage(timedOut, timeouts[`${timedOut}Ms`]), {
            'x-llm-meter-timeout': timedOut,
            // The provider may still finish (and bill) the call: a blind retry could pay twice.
            'x-should-retry': 'false',
          });
          return;
        }
        const code = causeCode(error);
        if (code === 'UND_ERR_CONNECT_TIMEOUT') {
          answer(res, adapter(), 504, 'timeout', timeoutMessage('connect', timeouts.connectMs), {
            'x-llm-meter-timeout': 'connect',
          });
          return;
        }
        log(`llm-meter gateway: upstream "${route.upstream}" failed (${code ?? (error as Error)?.name})`);
        answer(
          res,
          adapter(),
          502,
          'api_error',
          `The upstream "${route.upstream}" could not be reached (${code ?? 'network error'}).`,
        );
        return;
      }
      const stream = response.body;
      reader = stream?.getReader() ?? null;
      if (clientGone) return;

      timer.headers();
      const out = clientHeaders(response.headers);
      if (closing) out.connection = 'close';
      try {
        res.writeHead(response.status, response.statusText, out);
      } catch {
        answer(
          res,
          adapter(),
          502,
          'api_error',
          `The upstream "${route.upstream}" sent headers that cannot be forwarded.`,
        );
        return;
      }
      if (!reader || method === 'HEAD') {
        res.end();
        return;
      }
      if (STREAMING.test(response.headers.get('content-type') ?? '')) res.flushHeaders();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            consumed = true;
            break;
          }
          timer.chunk();
          if (res.write(value)) continue;
          // The client is slow, not the upstream: the idle clock stops while it catches up.
          timer.pause();
          await drainedOrAborted(res, controller.signal);
          if (clientGone || controller.signal.aborted) {
            res.destroy();
            return;
          }
          timer.resume();
        }
        res.end();
      } catch {
        // Cut upstream, a timeout, or the client gone: end without the closing chunk, so that the
        // client sees an interrupted body rather than a complete one.
        res.destroy();
      }
    } finally {
      if (reading) limits.release(client, reading.charged());
      if (response && !consumed) {
        if (!controller.signal.aborted) controller.abort();
        reader ??= response.body?.getReader() ?? null;
        if (reader) await endBody(reader, timedOut !== null);
      }
    }
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      // The error's name only: a message can quote a URL or a header value, keys included.
      log(`llm-meter gateway: request failed (${(error as Error)?.name ?? typeof error})`);
      if (!res.headersSent) answer(res, openaiAdapter, 500, 'api_error', 'The gateway failed.');
      else res.destroy();
    });
  };
  const server = createServer(
    { noDelay: true, keepAliveTimeout: 30_000, requestTimeout: 120_000 },
    onRequest,
  );
  server.on('connection', (socket) => limits.connected(socket));
  // `Expect: 100-continue` is answered only once the request line and headers pass (handle()).
  server.on('checkContinue', onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;

  let closed: Promise<void> | null = null;
  return {
    url,
    port: bound,
    stats: (): ProxyStats => ({
      requests: stats.requests,
      inFlight: exchanges.size,
      gatewayErrors: stats.gatewayErrors,
      bodyBytesInFlight: limits.bodyBytes(),
      circuits: breaker?.snapshot() ?? {},
      rateLimits: limiter?.snapshot() ?? {},
    }),
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (exchanges.size > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            Promise.all([...exchanges].map((e) => e.done)),
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, graceMs);
            }),
          ]);
          clearTimeout(timer);
        }
        for (const e of exchanges)
          e.controller.abort(new DOMException('The gateway is shutting down.', 'AbortError'));
        server.closeAllConnections();
        await stopped;
        if (ownMeter) await meter.shutdown();
        else await meter.flush();
        await agent.destroy();
      })();
      return closed;
    },
  };
}
