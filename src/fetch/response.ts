/**
 * A Response that carries a new body but otherwise behaves exactly like the original: a plain
 * `new Response(stream, init)` would lose `url`, `redirected` and `type`, which SDKs read.
 *
 * It hands out the original's own `Headers` (as raw fetch would) instead of copying them into
 * the new Response: copying a provider's dozen-odd headers costs more than the rest of the
 * wrapper. Only `content-type` is given to the base class, which `blob()` and `formData()` read
 * from its internal list. The accessors live on the prototype, so no per-call property
 * definitions either.
 */
class TappedResponse extends Response {
  readonly #original: Response;
  readonly #headers: Headers;

  constructor(original: Response, body: ReadableStream<Uint8Array>, headers: Headers) {
    const contentType = headers.get('content-type');
    super(body, {
      status: original.status,
      statusText: original.statusText,
      headers: contentType === null ? undefined : { 'content-type': contentType },
    });
    this.#original = original;
    this.#headers = headers;
  }

  override get url(): string {
    return this.#original.url;
  }

  override get redirected(): boolean {
    return this.#original.redirected;
  }

  override get type(): ResponseType {
    return this.#original.type;
  }

  override get headers(): Headers {
    return this.#headers;
  }

  override clone(): Response {
    return adopt(super.clone(), this.#original, this.#headers);
  }
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
