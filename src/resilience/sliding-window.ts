/** Amounts spent per key over a sliding window, for per-user limits. Time is passed in. */
interface SlidingWindow {
  /** Spent by `key` within the window ending at `at`. */
  used(key: string, at: number): number;
  add(key: string, amount: number, at: number): void;
  /** How long until `key` has spent at most `limit − amount` (0 when it has already). */
  waitFor(key: string, amount: number, limit: number, at: number): number;
}

interface Entry {
  at: number;
  amount: number;
}

export function createSlidingWindow(windowMs: number): SlidingWindow {
  const spent = new Map<string, { entries: Entry[]; total: number }>();

  function prune(key: string, at: number) {
    const s = spent.get(key);
    if (!s) return null;
    while (s.entries.length > 0 && s.entries[0]!.at <= at - windowMs) s.total -= s.entries.shift()!.amount;
    if (s.entries.length === 0) {
      spent.delete(key);
      return null;
    }
    return s;
  }

  return {
    used: (key, at) => prune(key, at)?.total ?? 0,
    add(key, amount, at) {
      if (amount <= 0) return;
      let s = prune(key, at);
      if (!s) {
        s = { entries: [], total: 0 };
        spent.set(key, s);
      }
      s.entries.push({ at, amount });
      s.total += amount;
    },
    waitFor(key, amount, limit, at) {
      const s = prune(key, at);
      if (!s) return 0;
      let total = s.total;
      for (const e of s.entries) {
        if (total + amount <= limit) break;
        total -= e.amount;
        if (total + amount <= limit) return e.at + windowMs - at;
      }
      return total + amount <= limit ? 0 : windowMs;
    },
  };
}
