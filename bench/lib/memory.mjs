// Memory while a stream flows through a client: heap and buffers retained over a gc'd baseline
// (a full gc every so many MiB shows what the client holds on to, not garbage waiting for the
// collector), sampled peaks, and throughput with the gc time taken out. Needs --expose-gc.
import { settleGc } from './stats.mjs';

const MiB = 1024 * 1024;
const buffersOf = (m) => m.external + m.arrayBuffers;

/**
 * The baseline is taken before `open()`, which starts the stream and resolves with
 * `read(onBytes)`: read it to the end, calling onBytes(n) per read; the clock starts once open()
 * has resolved. Memory is sampled every `sampleEvery` reads and after a full gc every `gcEveryMiB`;
 * `flush()` runs once the stream has ended, before the heap is measured once more.
 *
 * Returns MiB over the baseline (retainedHeap, retainedBuffers: the most after a gc; peakHeap,
 * peakBuffers, peakRss: the most sampled, garbage included; afterHeap), mbPerSecond (MiB/s) and
 * endMs, the time from the last read to the end of the stream.
 */
export async function streamMemory(open, { gcEveryMiB, sampleEvery, flush }) {
  settleGc();
  await new Promise((resolve) => setTimeout(resolve, 50));
  settleGc();
  const zero = process.memoryUsage();
  const peak = { heap: 0, buffers: 0, rss: 0 };
  const retained = { heap: 0, buffers: 0 };
  const read = await open();
  let bytes = 0;
  let reads = 0;
  let nextGc = gcEveryMiB * MiB;
  let gcMs = 0;
  const start = performance.now();
  let lastAt = start;
  await read((n) => {
    bytes += n;
    if (++reads % sampleEvery === 0) {
      const m = process.memoryUsage();
      peak.heap = Math.max(peak.heap, m.heapUsed - zero.heapUsed);
      peak.buffers = Math.max(peak.buffers, buffersOf(m) - buffersOf(zero));
      peak.rss = Math.max(peak.rss, m.rss - zero.rss);
    }
    if (bytes >= nextGc) {
      nextGc += gcEveryMiB * MiB;
      const g = performance.now();
      settleGc();
      gcMs += performance.now() - g;
      const m = process.memoryUsage();
      retained.heap = Math.max(retained.heap, m.heapUsed - zero.heapUsed);
      retained.buffers = Math.max(retained.buffers, buffersOf(m) - buffersOf(zero));
      peak.rss = Math.max(peak.rss, m.rss - zero.rss);
    }
    lastAt = performance.now();
  });
  const endMs = performance.now() - lastAt;
  const seconds = (performance.now() - start - gcMs) / 1000;
  await flush();
  settleGc();
  const after = process.memoryUsage();
  return {
    mbPerSecond: bytes / MiB / seconds,
    retainedHeap: retained.heap / MiB,
    retainedBuffers: retained.buffers / MiB,
    peakHeap: peak.heap / MiB,
    peakBuffers: peak.buffers / MiB,
    peakRss: peak.rss / MiB,
    afterHeap: (after.heapUsed - zero.heapUsed) / MiB,
    endMs,
  };
}
