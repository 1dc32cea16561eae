import type { IncomingMessage } from 'node:http';
import type { Charge } from './limits.js';

export type BodyRead =
  | { body: Buffer }
  /** Over `max` (declared or sent), or over a client's or the gateway's body-memory cap. */
  | { refused: 'too_large' | Exclude<Charge, 'ok'> }
  /** The client went away before sending all of it. */
  | { gone: true };

/**
 * Reads a request body of at most `max` bytes. Every byte is charged (`charge`) before it is held:
 * a declared `content-length` at once, before anything is read, a chunked body as it arrives.
 * `charged()` says how much to release when the exchange ends. At the first refusal reading
 * stops: the rest of the body is never read (the caller answers and closes the connection).
 */
export function readBody(
  req: IncomingMessage,
  max: number,
  charge: (bytes: number) => Charge,
  /** Once the declared length passed: where `100 Continue` goes, so a refused body is never asked for. */
  accepted: () => void = () => {},
): { done: Promise<BodyRead>; charged: () => number } {
  let charged = 0;
  const done = new Promise<BodyRead>((resolve) => {
    const header = req.headers['content-length'];
    const declared = header !== undefined && /^\d+$/.test(header) ? Number(header) : null;
    if (declared !== null && declared > max) return resolve({ refused: 'too_large' });
    if (declared !== null && declared > 0) {
      const verdict = charge(declared);
      if (verdict !== 'ok') return resolve({ refused: verdict });
      charged = declared;
    }
    accepted();
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (value: BodyRead) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      if (!('body' in value)) req.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) return settle({ refused: 'too_large' });
      if (size > charged) {
        const verdict = charge(size - charged);
        if (verdict !== 'ok') return settle({ refused: verdict });
        charged = size;
      }
      chunks.push(chunk);
    };
    const onEnd = () => settle({ body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    const onGone = () => settle({ gone: true });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
  return { done, charged: () => charged };
}

/** Bodies this small are read and thrown away after an early answer, so the connection stays usable. */
const DISCARDABLE_BYTES = 64 * 1024;

/**
 * Headers for an answer given before the request body was read: a body of unknown or more than
 * a small length is never read, so the connection closes after the answer instead of Node
 * reading (and discarding) all of it to reuse the connection.
 */
export function unreadBodyHeaders(req: IncomingMessage): { connection?: 'close' } {
  if (req.complete) return {};
  const header = req.headers['content-length'];
  if (header !== undefined && /^\d+$/.test(header) && Number(header) <= DISCARDABLE_BYTES) return {};
  if (header === undefined && req.headers['transfer-encoding'] === undefined) return {};
  return { connection: 'close' };
}
