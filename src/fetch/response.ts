import { type BodyObserver, tapBody } from './tap.js';

/**
 * A Response that stands for the original with another body: a plain `new Response(body,
 * init)` would lose `url`, `redirected` and `type`, which SDKs read.
 *
 * It hands out the original's own `Headers` (as raw fetch would) instead of copying them into
 * the new Response: copying a provider's dozen-odd headers costs more than the rest of the
 * wrapper. Only `content-type` is given to the base class, which `blob()` and `formData()` read
 * from its internal list. The accessors live on the prototype, so no per-call property
 * definitions either.
 */
abstract class StandIn extends Response {
  protected readonly original: Response;
  readonly #headers: Headers;

  constructor(original: Response, body: ReadableStream<Uint8Array> | null, headers: Headers) {
    super(body, {
      status: original.status,
      statusText: original.statusText,
      headers: contentTypeOnly(headers),
    });
    this.original = original;
    this.#headers = headers;
  }

  override get url(): string {
    return this.original.url;
  }

  override get redirected(): boolean {
    return this.original.redirected;
  }

  override get type(): ResponseType {
    return this.original.type;
  }

  override get headers(): Headers {
    return this.#headers;
  }
}

/** A streamed body through the tap. */
class TappedResponse extends StandIn {
  override clone(): Response {
    return adopt(super.clone(), this.original, this.headers);
  }
}

/**
 * A whole (non-streamed) body, observed without a second stream. Most callers of a JSON
 * response call `json()` or `text()`: those read the original body in one piece (undici's own
 * fast path) and show it to the observer as a single chunk, so a call costs no extra
 * ReadableStream, reader or per-chunk promise. A caller that asks for `body` or clones gets,
 * from then on, a plain Response over the pull-based tap (made then), with its exact semantics.
 */
class ObservedResponse extends StandIn {
  readonly #observer: BodyObserver;
  readonly #now: () => number;
  /** Set once `body` or `clone()` was used: everything goes through it from then on. */
  #tapped: Response | null = null;
  #started = false;

  constructor(original: Response, observer: BodyObserver, now: () => number) {
    super(original, null, original.headers);
    this.#observer = observer;
    this.#now = now;
  }

  #tap(): Response {
    this.#tapped ??= new Response(tapBody(this.original.body!, this.#observer, this.#now), {
      status: this.original.status,
      statusText: this.original.statusText,
      headers: contentTypeOnly(this.original.headers),
    });
    return this.#tapped;
  }

  override get body(): ReadableStream<Uint8Array<ArrayBuffer>> {
    // After a method began reading, the original (disturbed) stream, as raw fetch would give.
    if (this.#started) return this.original.body!;
    return this.#tap().body!;
  }

  override get bodyUsed(): boolean {
    return this.#tapped ? this.#tapped.bodyUsed : this.original.bodyUsed;
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#tapped) return this.#tapped.arrayBuffer();
    // A second read fails as raw fetch's does (the body is unusable); the first one observes.
    if (this.#started) return this.original.arrayBuffer();
    this.#started = true;
    let buffer: ArrayBuffer;
    try {
      buffer = await this.original.arrayBuffer();
    } catch (error) {
      finishObserver(this.#observer, 'error', error);
      throw error;
    }
    try {
      this.#observer.chunk(new Uint8Array(buffer), this.#now());
    } catch {
      // Fail-open: the observer never changes what the caller reads.
    }
    finishObserver(this.#observer, 'done');
    return buffer;
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#tapped) return this.#tapped.bytes();
    return new Uint8Array(await this.arrayBuffer());
  }

  override async text(): Promise<string> {
    if (this.#tapped) return this.#tapped.text();
    return textDecoder.decode(await this.arrayBuffer());
  }

  override async json(): Promise<unknown> {
    if (this.#tapped) return this.#tapped.json();
    return JSON.parse(await this.text());
  }

  override async blob(): Promise<Blob> {
    if (this.#tapped) return this.#tapped.blob();
    return this.#rebuilt(await this.arrayBuffer()).blob();
  }

  override async formData(): Promise<FormData> {
    if (this.#tapped) return this.#tapped.formData();
    return this.#rebuilt(await this.arrayBuffer()).formData();
  }

  override clone(): Response {
    // Once read, cloning fails as raw fetch's does.
    if (this.#started) return this.original.clone();
    return adopt(this.#tap().clone(), this.original, this.original.headers);
  }

  /** The same bytes as a plain Response, for the decoders that read a MIME type (blob, formData). */
  #rebuilt(buffer: ArrayBuffer): Response {
    return new Response(buffer, { headers: contentTypeOnly(this.original.headers) });
  }
}

function contentTypeOnly(headers: Headers): Record<string, string> | undefined {
  const contentType = headers.get('content-type');
  return contentType === null ? undefined : { 'content-type': contentType };
}

const textDecoder = new TextDecoder();

/** Called once per body (ObservedResponse#started); its failures stay here. */
function finishObserver(observer: BodyObserver, how: 'done' | 'error', error?: unknown): void {
  try {
    observer.finish(how, error);
  } catch {
    // Fail-open.
  }
}

/** A Response whose whole body `observer` sees once the caller has read it. */
export function withObservedBody(original: Response, observer: BodyObserver, now: () => number): Response {
  return new ObservedResponse(original, observer, now);
}

export function withBody(
  original: Response,
  body: ReadableStream<Uint8Array>,
  dropContentLength: boolean,
): Response {
  let headers = original.headers;
  if (dropContentLength && headers.has('content-length')) {
    headers = new Headers(headers);
    headers.delete('content-length');
  }
  return new TappedResponse(original, body, headers);
}

/** A clone (rare) gets the same view as instance properties. */
function adopt(response: Response, original: Response, headers: Headers): Response {
  const nativeClone = response.clone.bind(response);
  Object.defineProperties(response, {
    url: { value: original.url, enumerable: false, configurable: true },
    redirected: { value: original.redirected, enumerable: false, configurable: true },
    type: { value: original.type, enumerable: false, configurable: true },
    headers: { value: headers, enumerable: false, configurable: true },
    clone: {
      value: () => adopt(nativeClone(), original, headers),
      enumerable: false,
      configurable: true,
      writable: true,
    },
  });
  return response;
}
