// How a benchmark round drives the sides it compares.

/** `items` in order on even rounds and reversed on odd ones, so neither side always goes first. */
export const alternate = (round, items) => (round % 2 === 0 ? items : [...items].reverse());

/**
 * `n` calls of `fn` from `concurrency` loops at once: the wall time in ms and this process's CPU
 * time (user + system) in µs, both for all `n` together.
 */
export async function concurrently(n, concurrency, fn) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await fn();
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuUs: cpu.user + cpu.system };
}
