/**
 * The one fail-open boundary: every sink, hook and exporter call runs through it. Errors go to
 * the diagnostic logger (when given) and are counted; they never reach the caller.
 */
export interface Safe {
  run<T>(label: string, fn: () => T): T | undefined;
  runAsync<T>(label: string, fn: () => Promise<T> | T): Promise<T | undefined>;
  report(label: string, error: unknown): void;
  errors(): number;
  /** The same failures by label (spans, metrics, store, budgets, onRecord...). */
  errorsBy(): Record<string, number>;
}

export function createSafe(logger?: (message: string, error?: unknown) => void): Safe {
  let count = 0;
  const byLabel = new Map<string, number>();
  const report = (label: string, error: unknown) => {
    count++;
    byLabel.set(label, (byLabel.get(label) ?? 0) + 1);
    if (!logger) return;
    try {
      logger(`llm-meter: ${label} failed`, error);
    } catch {
      // A throwing logger is not our caller's problem either.
    }
  };
  return {
    run(label, fn) {
      try {
        return fn();
      } catch (error) {
        report(label, error);
        return undefined;
      }
    },
    async runAsync(label, fn) {
      try {
        return await fn();
      } catch (error) {
        report(label, error);
        return undefined;
      }
    },
    report,
    errors: () => count,
    errorsBy: () => Object.fromEntries(byLabel),
  };
}
