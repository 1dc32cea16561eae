// What the benchmarks send (one chat completion, and streaming requests) and how they read the
// streams bench/lib/server.mjs writes back.
import { nowNs } from './stats.mjs';

export const CHAT = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Answer in one short paragraph.' },
    { role: 'user', content: 'What does the quick brown fox do over the lazy dog, and why does it matter?' },
  ],
  max_tokens: 64,
  temperature: 0.2,
};

/** `fetch` options for CHAT. */
export const CHAT_INIT = {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
  body: JSON.stringify(CHAT),
};

/** A streaming chat request of one user message, asking for usage in the stream or not. */
export const streamChat = (content, includeUsage) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content }],
  stream: true,
  ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
});

/**
 * Reads a stream of stamped chunks to its end, calling `onChunk(index, stamp, arrival)` for each
 * chunk as its bytes arrive, `arrival` on `clock` (read once per network read).
 */
export async function readStamped(res, onChunk, clock = nowNs) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let carry = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const at = clock();
    carry += decoder.decode(value, { stream: true });
    const re = /"i":(\d+),"t":([\d.]+)/g;
    let last = 0;
    for (let m = re.exec(carry); m; m = re.exec(carry)) {
      onChunk(Number(m[1]), Number(m[2]), at);
      last = re.lastIndex;
    }
    carry = carry.slice(last);
  }
}

/** Reads a response body to its end, calling `onBytes(n)` per read. */
export async function drain(res, onBytes) {
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onBytes(value.byteLength);
  }
}
