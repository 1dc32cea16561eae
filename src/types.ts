import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { AttributionInput } from './attribution.js';
import type { Budgets, BudgetsStats } from './budgets/service.js';
import type { FetchLike } from './fetch/request.js';
import type { CallRecord } from './record.js';
import type { StoreStats, UsageStore } from './store/types.js';

export type { AttributionInput } from './attribution.js';
export type { FetchLike } from './fetch/request.js';

/** A price in USD per 1M tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Price of input tokens read from the prompt cache; defaults to `input`. */
  cachedInput?: number;
  /** Price of input tokens written to the prompt cache; defaults to `input`. */
  cacheWrite?: number;
}

export interface MeterOptions {
  /** SQLite file for usage rows; ':memory:' allowed; `false` keeps no store. Default './llm-meter.db'. */
  database?: string | false;
  /**
   * How a completed call's row is made durable (README, "Choices, and why"). 'journal' (default):
   * appended to a journal file before the call completes, committed by a writer thread; survives
   * a kill -9. 'commit': committed on the event loop before the caller's next I/O. 'async':
   * committed by the writer thread, not journaled; a kill -9 loses the rows not yet committed.
   * ':memory:' always commits as 'commit'.
   */
  durability?: 'journal' | 'commit' | 'async';
  /** Price overrides by model name, in USD per 1M tokens. They win over the pricing catalog. */
  prices?: Record<string, ModelPrice>;
  /** Record prompts and completions in spans and rows. Default false: they never leave the process. */
  captureContent?: boolean;
  /** Default: the global OpenTelemetry tracer provider. */
  tracerProvider?: TracerProvider;
  /** Default: the global OpenTelemetry meter provider. */
  meterProvider?: MeterProvider;
  /** The fetch that `meter.fetch` wraps. Default: the global fetch at the time of the call. */
  fetch?: FetchLike;
  /**
   * Ask OpenAI-style chat streams for their exact usage (`stream_options.include_usage`) and
   * hide the extra usage chunk from the caller. Default true.
   */
  streamUsage?: boolean;
  /** Refuse, locally and before sending, calls whose input + max output exceed the model's context window. */
  enforceContextWindow?: boolean;
  /** Request bodies larger than this are not parsed (recorded as unparsed). Default 8 MiB. */
  maxRequestBodyBytes?: number;
  /** Non-streaming response bodies larger than this are not parsed for usage. Default 16 MiB. */
  maxResponseBodyBytes?: number;
  /** Salt for the short hash of API keys used in per-key breakdowns. No salt, no hash. */
  apiKeyHashSalt?: string;
  /** Let budget webhooks reach private, loopback and link-local addresses. Default false. */
  allowPrivateWebhooks?: boolean;
  /** How often the webhook outbox is polled for due deliveries. Default 1000 ms. */
  webhookPollIntervalMs?: number;
  /**
   * How long a blocking budget's reservation counts unless its process renews it (it does,
   * while the call is in flight): a crashed process's reservations stop counting within this.
   * Default 2 minutes.
   */
  reservationLeaseMs?: number;
  /** Receives records after every sink has seen them; errors are swallowed. */
  onRecord?: (record: CallRecord) => void;
  /** Diagnostic logger for swallowed internal errors. Default: silent. Never gets secrets. */
  logger?: (message: string, error?: unknown) => void;
}

export interface Meter {
  /** The usage store (SQLite), or null with `database: false`. */
  readonly store: UsageStore | null;
  /** Budgets, enforcement and alerts, or null with `database: false`. */
  readonly budgets: Budgets | null;
  /** A metered `fetch` (wrapping `options.fetch` or the global fetch). */
  readonly fetch: FetchLike;
  /** Meter any fetch-compatible function. */
  wrapFetch(fetch: FetchLike): FetchLike;
  /** Replace `globalThis.fetch` with a metered one; returns a function that restores it. */
  instrumentGlobalFetch(): () => void;
  /** Attribute every call made inside `fn` (AsyncLocalStorage). */
  run<T>(attribution: AttributionInput, fn: () => T): T;
  /** Everything recorded so far is assembled, persisted and handed to the exporters. */
  flush(): Promise<void>;
  /** Flush, then release the store and stop accepting records. */
  shutdown(): Promise<void>;
  /** Counters about the meter itself: calls metered, records dropped, sink failures. */
  stats(): MeterStats;
}

export interface MeterStats {
  /** Calls metered since the meter was created. */
  calls: number;
  /** Calls started and not yet recorded (streams still flowing). */
  inFlight: number;
  /** Failures swallowed at the fail-open boundary, in total... */
  sinkErrors: number;
  /** ...and by where they happened (spans, metrics, store, budgets, onRecord, assemble...). */
  sinkErrorsBy: Record<string, number>;
  /** The usage store's own counters (commits retried, records dropped...); null without a database. */
  store: StoreStats | null;
  /** Budget spend accounting (settles retried, pending, dropped); null without a database. */
  budgets: BudgetsStats | null;
}
