// How a benchmark round drives the sides it compares.

/** `items` in order on even rounds and reversed on odd ones, so neither side always goes first. */
export const alternate = (round, items) => (round % 2 === 0 ? items : [...items].reverse());

/**
 * `n` calls of `fn` from `concurrency` loops at once: the wall time in ms, this process's CPU
 * time (user + system, every thread) in µs and the main thread's event-loop busy time in µs
 * (the active time of a performance.eventLoopUtilization() delta: utilization × wall time), all
 * for the `n` together.
 */
export async function concurrently(n, concurrency, fn) {
  let next = 0;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await fn();
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  return { ms, cpuUs: cpu.user + cpu.system, loopUs: elu.active * 1000 };
}
