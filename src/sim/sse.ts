import type { ServerResponse } from 'node:http';
import { setImmediate as tick } from 'node:timers/promises';
import type { Behavior } from './types.js';

export interface SseEvent {
  event?: string;
  data: string;
}

type LineEnding = Behavior['lineEnding'];

export function encodeEvents(events: SseEvent[], le: LineEnding): string {
  let out = '';
  for (const e of events) {
    if (e.event !== undefined) out += `event: ${e.event}${le}`;
    out += `data: ${e.data}${le}${le}`;
  }
  return out;
}

/**
 * What a tolerant SSE parser must skip (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * comments, blank lines, an event type nobody asked for and a data line that is not JSON. The
 * official SDKs JSON-parse every data line, so this noise is for parser tests, not SDK tests
 * (Anthropic's SDK does skip data without an event name, so its streams survive it).
 */
export function noise(le: LineEnding): string {
  return (
    `: keep-alive${le}${le}` +
    `${le}${le}` +
    `event: sim.unknown${le}data: {"type":"sim.unknown"}${le}${le}` +
    `data: sim noise … not JSON${le}${le}`
  );
}

export const comment = (le: LineEnding): string => `: keep-alive${le}`;

/** Seeded so a failing split can be replayed from the call id. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes `data` in the behaviour's chunking; split writes yield to the event loop so each leaves as its own packet. */
export async function writeChunked(
  res: ServerResponse,
  data: string | Uint8Array,
  chunking: Behavior['chunking'],
  random: () => number,
): Promise<void> {
  if (chunking === 'event') {
    res.write(data);
    return;
  }
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let at = 0;
  while (at < bytes.length && !res.destroyed) {
    const size = chunking === 'byte' ? 1 : 1 + Math.floor(random() * 16);
    res.write(bytes.subarray(at, at + size));
    at += size;
    await tick();
  }
}
