/**
 * The bounded queue of items waiting to be committed (write-behind.ts). A batch is read with
 * `peek` and only removed with `consume` once its transaction committed, so a failed commit
 * leaves it in place for the next attempt. Past capacity the oldest item is evicted (the newest
 * calls matter more to someone looking at a dashboard after an outage).
 */
interface PendingQueue<T> {
  /** Returns the number of items evicted to make room (0 or 1). */
  push(item: T): number;
  peek(max: number): T[];
  consume(count: number): void;
  clear(): number;
  readonly size: number;
}

export function createPendingQueue<T>(capacity: number): PendingQueue<T> {
  let items: T[] = [];
  let head = 0;
  const compact = () => {
    if (head > 1024 && head * 2 > items.length) {
      items = items.slice(head);
      head = 0;
    }
  };
  return {
    push(item) {
      items.push(item);
      if (items.length - head <= capacity) return 0;
      head++;
      compact();
      return 1;
    },
    peek(max) {
      return items.slice(head, head + max);
    },
    consume(count) {
      head = Math.min(items.length, head + count);
      if (head === items.length) {
        items = [];
        head = 0;
      } else compact();
    },
    clear() {
      const size = items.length - head;
      items = [];
      head = 0;
      return size;
    },
    get size() {
      return items.length - head;
    },
  };
}
