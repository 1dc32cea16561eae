/**
 * Telemetry handed to the SDK on the next `setImmediate`, in order and in one batch, instead of
 * on the caller's completion path: the caller's body resolves first, and the SDK work runs
 * while the process waits for I/O anyway. Nothing is dropped: `flush()` runs what is pending
 * at once (the meter's flush calls it before the exporters flush).
 */
interface Deferred<T> {
  push(item: T): void;
  flush(): void;
}

// One immediate for every queue with work pending (spans and metrics of the same calls): an
// immediate is an async resource, which costs more where async hooks are enabled.
const due = new Set<() => void>();
let scheduled = false;

function runDue(): void {
  scheduled = false;
  for (const flush of due) {
    due.delete(flush);
    flush();
  }
}

export function createDeferred<T>(
  run: (items: readonly T[]) => void,
  onError: ((error: unknown) => void) | undefined,
): Deferred<T> {
  let pending: T[] = [];

  // Runs outside any caller's stack: nothing may escape it.
  const flush = (): void => {
    due.delete(flush);
    const items = pending;
    if (items.length === 0) return;
    pending = [];
    try {
      run(items);
    } catch (error) {
      try {
        onError?.(error);
      } catch {
        // The diagnostic logger is fenced already; this is the last fence.
      }
    }
  };

  return {
    push(item) {
      pending.push(item);
      if (pending.length === 1) {
        due.add(flush);
        if (!scheduled) {
          scheduled = true;
          setImmediate(runDue);
        }
      }
    },
    flush,
  };
}
