/**
 * A Response that carries a new body but otherwise behaves exactly like the original: a plain
 * `new Response(stream, init)` would lose `url`, `redirected` and `type`, which SDKs read.
 */
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
  const response = new Response(body, { status: original.status, statusText: original.statusText, headers });
  return adopt(response, original);
}

function adopt(response: Response, original: Response): Response {
  const nativeClone = response.clone.bind(response);
  Object.defineProperties(response, {
    url: { value: original.url, enumerable: false, configurable: true },
    redirected: { value: original.redirected, enumerable: false, configurable: true },
    type: { value: original.type, enumerable: false, configurable: true },
    clone: {
      value: () => adopt(nativeClone(), original),
      enumerable: false,
      configurable: true,
      writable: true,
    },
  });
  return response;
}
