/**
 * The body tap: the caller's body stream pulls from the upstream body one chunk at a time, so
 * nothing is buffered beyond what the caller asked for (no `tee()`, whose branches buffer
 * without bound when one side stops reading), backpressure reaches the socket, and cancelling
 * the caller's body cancels the upstream body, which closes the upstream connection.
 */
export interface BodyObserver {
  /** Sees each chunk as it arrives; returns the bytes to forward (usually the same chunk). */
  chunk(bytes: Uint8Array, atMs: number): Uint8Array;
  /** Bytes still held at the end of the body (only when the observer rewrites), or null. */
  drain(): Uint8Array | null;
  /** Exactly once: the body ended, failed, or the caller cancelled it. */
  finish(how: 'done' | 'error' | 'cancel', error?: unknown): void;
}

export function tapBody(
  upstream: ReadableStream<Uint8Array>,
  observer: BodyObserver,
  now: () => number,
): ReadableStream<Uint8Array> {
  const reader = upstream.getReader();
  let finished = false;
  let failed: unknown;
  const finish = (how: 'done' | 'error' | 'cancel', error?: unknown) => {
    if (finished) return;
    finished = true;
    try {
      observer.finish(how, error);
    } catch {
      // Fail-open: the observer never breaks the caller's body.
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (failed !== undefined) {
          finish('error', failed);
          controller.error(failed);
          return;
        }
        // Loop until something is forwarded: a pull that enqueues nothing is not called again.
        for (;;) {
          let result: ReadableStreamReadResult<Uint8Array>;
          try {
            result = await reader.read();
          } catch (error) {
            // Bytes a rewriting observer still holds (a partial last event) reach the caller
            // first, as they would through raw fetch; the error follows on the next pull.
            let rest: Uint8Array | null = null;
            try {
              rest = observer.drain();
            } catch {
              rest = null;
            }
            if (rest && rest.byteLength > 0) {
              failed = error;
              controller.enqueue(rest);
              return;
            }
            finish('error', error);
            controller.error(error);
            return;
          }
          if (result.done) {
            let rest: Uint8Array | null = null;
            try {
              rest = observer.drain();
            } catch {
              rest = null;
            }
            if (rest && rest.byteLength > 0) controller.enqueue(rest);
            finish('done');
            controller.close();
            return;
          }
          const chunk = result.value;
          let out: Uint8Array = chunk;
          try {
            out = observer.chunk(chunk, now());
          } catch {
            out = chunk;
          }
          if (out.byteLength > 0) {
            controller.enqueue(out);
            return;
          }
        }
      },
      cancel(reason) {
        finish('cancel', reason);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
