import { comment, encodeEvents, noise, type SseEvent } from './sse.js';
import type { Behavior } from './types.js';

/**
 * How a stream's events go on the wire. Every wire builds its stream as a list of events; the
 * framing decides their bytes:
 * - `sse`: Server-Sent Events (OpenAI, Anthropic, Gemini with `alt=sse`);
 * - `ndjson`: one JSON text per LF-ended line (Ollama,
 *   https://github.com/ollama/ollama/blob/main/docs/api.md#streaming-responses);
 * - `json-array`: one JSON array written element by element, as Gemini's
 *   `:streamGenerateContent` without `alt=sse` does: `[{…}` then `\r\n,\r\n{…}` … then `\r\n]`
 *   (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent).
 *   Elements are pretty-printed, as Google's servers send them, so a reader cannot split on lines.
 */
export type Framing = 'sse' | 'ndjson' | 'json-array';

interface Framer {
  contentType: string;
  /** Bytes for the next events; the first call also opens the body (`[` for a JSON array). */
  events(events: SseEvent[]): string;
  /** What the `garbage` fault adds before each write: filler a tolerant reader must skip. */
  garbage(): string;
  /** What the `garbage` fault adds once, after the opening events: more kinds of noise. */
  noise(): string;
  /** Closes a complete body (`]` for a JSON array). Not written when the stream is cut. */
  close(): string;
}

export function createFramer(framing: Framing, lineEnding: Behavior['lineEnding']): Framer {
  if (framing === 'ndjson') {
    return {
      contentType: 'application/x-ndjson',
      events: (events) => events.map((e) => `${e.data}\n`).join(''),
      garbage: () => '\n',
      noise: () => '\n\n',
      close: () => '',
    };
  }
  if (framing === 'json-array') {
    let opened = false;
    let elements = 0;
    return {
      contentType: 'application/json; charset=UTF-8',
      events(events) {
        let out = opened ? '' : '[';
        opened = true;
        for (const e of events) {
          out += (elements++ > 0 ? '\r\n,\r\n' : '') + JSON.stringify(JSON.parse(e.data), null, 2);
        }
        return out;
      },
      garbage: () => ' \r\n',
      noise: () => '\r\n\t',
      close: () => (opened ? '' : '[') + '\r\n]',
    };
  }
  return {
    contentType: 'text/event-stream; charset=utf-8',
    events: (events) => encodeEvents(events, lineEnding),
    garbage: () => comment(lineEnding),
    noise: () => noise(lineEnding),
    close: () => '',
  };
}
