import type {
  CircuitBreakerOptions,
  CircuitSnapshot,
  GuardOptions,
  RateLimiterOptions,
  RateLimiterSnapshot,
} from '../resilience/types.js';
import type { Meter, MeterOptions } from '../types.js';

export interface ProxyOptions {
  /** Default 8788; 0 picks a free port. */
  port?: number;
  /**
   * Default 127.0.0.1. Without `requireKey` only a loopback host (127.0.0.1, ::1, localhost) is
   * accepted unless `insecureNoAuth`.
   */
  host?: string;
  /**
   * Upstream base URLs by name, e.g. `{ openai: 'https://api.openai.com', anthropic:
   * 'https://api.anthropic.com' }`. A request reaches upstream `name` by the path prefix
   * `/{name}/…`, or by the provider's own path shape: `/v1/messages…` → `anthropic`,
   * `/v1beta/…` and `…/models/{m}:{method}` → `gemini`, `/api/…` → `ollama`, other `/v1/…` → `openai`.
   */
  upstreams: Record<string, string>;
  /** The meter every call goes through. Default: one the proxy creates from `meterOptions` and shuts down on close. */
  meter?: Meter;
  meterOptions?: MeterOptions;
  /** Accept only gateway keys (`lmk_…`) from `keys` / `keysFile`; the provider keys they map to are the proxy's. */
  requireKey?: boolean;
  keys?: Record<string, GatewayKey>;
  /**
   * Without `requireKey` the gateway is for this machine only: it listens on loopback, answers
   * loopback `Host` names only (DNS rebinding) and refuses cross-site browser requests. `true`
   * lets it listen beyond loopback without keys anyway, with a warning on `logger` (default
   * `process.emitWarning`), and answers IP-literal `Host`s too: anyone who can reach it can then
   * make calls through it and record usage under any name. Default false.
   */
  insecureNoAuth?: boolean;
  /** A JSON file of `{ "lmk_…": GatewayKey }`. */
  keysFile?: string;
  timeouts?: ProxyTimeouts;
  /** How long `close()` lets in-flight calls finish before aborting them. Default 10,000 ms. */
  shutdownGraceMs?: number;
  /** Connections per upstream origin (keep-alive, no pipelining). Default 256. */
  connections?: number;
  /** Larger request bodies are refused with 413, before they are read when declared. Default 32 MiB. */
  maxRequestBodyBytes?: number;
  /**
   * Connections one client (an IPv4 address, an IPv6 /64) may hold open; requests on further
   * ones are answered 429 and the connection closed. Behind a load balancer every client shares
   * its address. Default 512 (twice the upstream `connections` a client could keep busy).
   */
  maxConnectionsPerClient?: number;
  /**
   * Request-body bytes one client may have in the gateway's memory at once (held from the first
   * byte read until its call ends); more is answered 429 without reading it. At least
   * `maxRequestBodyBytes`; default twice that.
   */
  maxBodyBytesPerClient?: number;
  /** The same for all clients together. At least `maxBodyBytesPerClient`; default 8 × `maxRequestBodyBytes`. */
  maxBodyBytesInFlight?: number;
  /** Default max tokens, tool-round cap, per-user limits (per user from attribution). */
  guards?: GuardOptions;
  /** A circuit breaker per provider and model; open circuits answer 503 in the provider's shape. */
  circuitBreaker?: CircuitBreakerOptions;
  /** A client-side limiter over the provider's reported rate limits, shared by every client. */
  rateLimiter?: RateLimiterOptions;
  /** Diagnostics (upstream failures, shutdown). Never receives keys or bodies. */
  logger?: (message: string, error?: unknown) => void;
}

/**
 * Timeouts, each producing a record with `errorType: 'timeout'` and a client response that says
 * which one fired (`x-llm-meter-timeout`). Narrower ones sit inside wider ones:
 * connect ≤ headers ≤ total and idle ≤ total, checked at start. The gateway is the bottom of a
 * caller's stack, so its total is long (15 min, over the SDKs' 10 min default): a client's own,
 * shorter timeout fires first and its disconnect aborts the upstream call at once.
 */
export interface ProxyTimeouts {
  /** TCP/TLS connect to the upstream. Default 10,000 ms. */
  connectMs?: number;
  /** Request received → response headers (for a non-streamed call, its whole generation). Default 600,000 ms. */
  headersMs?: number;
  /** Longest silence between two body chunks. Default 300,000 ms. */
  idleMs?: number;
  /** Request received → response finished. Default 900,000 ms. */
  totalMs?: number;
}

/**
 * What a gateway key stands for. The fields it sets win over the client's `x-llm-meter-*`
 * headers; `pin` also keeps headers from setting the fields it leaves out.
 */
export interface GatewayKey {
  user?: string;
  project?: string;
  feature?: string;
  /** Win over header tags of the same name. */
  tags?: Record<string, string>;
  /**
   * Attribution the client's headers may not set at all: `'all'`, or some of `'user'`,
   * `'project'`, `'feature'`, `'tags'`. A pinned field is the key's (unset if the key leaves it
   * out); pinned `tags` are the key's tags only. Default: none beyond the fields the key sets.
   */
  pin?: 'all' | ('user' | 'project' | 'feature' | 'tags')[];
  /** The real provider key per upstream name, sent in place of the gateway key. */
  providerKeys: Record<string, string>;
}

export interface RunningProxy {
  /** `http://host:port` */
  url: string;
  port: number;
  /** Stop accepting, let in-flight calls finish up to `shutdownGraceMs`, then flush the meter. */
  close(): Promise<void>;
  stats(): ProxyStats;
}

export interface ProxyStats {
  requests: number;
  inFlight: number;
  /** Calls answered by the gateway itself: no route, bad key, upstream unreachable, timeouts. */
  gatewayErrors: number;
  /** Request-body bytes held in memory now (see `maxBodyBytesInFlight`). */
  bodyBytesInFlight: number;
  /** Each circuit (`{provider}/{model}`) of the circuit breaker, when it is on. */
  circuits: Record<string, CircuitSnapshot>;
  /** The rate limiter's view of each provider budget, when it is on. */
  rateLimits: Record<string, RateLimiterSnapshot>;
}
