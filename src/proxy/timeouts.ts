import { InvalidOptionError } from '../errors/errors.js';
import { positiveNumber } from '../options.js';
import type { ProxyTimeouts } from './types.js';

export type TimeoutKind = 'connect' | 'headers' | 'idle' | 'total';

export const DEFAULT_TIMEOUTS: Required<ProxyTimeouts> = {
  connectMs: 10_000,
  headersMs: 600_000,
  idleMs: 300_000,
  totalMs: 900_000,
};

/** Checks each timeout and that narrower ones fit inside wider ones (connect ≤ headers ≤ total, idle ≤ total). */
export function resolveTimeouts(input: ProxyTimeouts = {}): Required<ProxyTimeouts> {
  const t = { ...DEFAULT_TIMEOUTS };
  for (const key of Object.keys(DEFAULT_TIMEOUTS) as (keyof ProxyTimeouts)[]) {
    t[key] = positiveNumber(`timeouts.${key}`, input[key], t[key], { unit: 'milliseconds' });
  }
  // Defaults give way to a narrower explicit outer timeout rather than contradict it.
  if (input.totalMs !== undefined) {
    if (input.headersMs === undefined) t.headersMs = Math.min(t.headersMs, t.totalMs);
    if (input.idleMs === undefined) t.idleMs = Math.min(t.idleMs, t.totalMs);
  }
  if (input.headersMs !== undefined || input.totalMs !== undefined) {
    if (input.connectMs === undefined) t.connectMs = Math.min(t.connectMs, t.headersMs);
  }
  const order: [keyof ProxyTimeouts, keyof ProxyTimeouts][] = [
    ['connectMs', 'headersMs'],
    ['headersMs', 'totalMs'],
    ['idleMs', 'totalMs'],
  ];
  for (const [inner, outer] of order) {
    if (t[inner] > t[outer]) {
      throw new InvalidOptionError(
        `Expected \`timeouts.${inner}\` (${t[inner]} ms) to be at most \`timeouts.${outer}\` (${t[outer]} ms).`,
      );
    }
  }
  return t;
}

export function timeoutMessage(kind: TimeoutKind, ms: number): string {
  switch (kind) {
    case 'connect':
      return `Could not connect to the upstream within ${ms} ms.`;
    case 'headers':
      return `The upstream sent no response headers within ${ms} ms.`;
    case 'idle':
      return `The upstream sent nothing for ${ms} ms.`;
    case 'total':
      return `The call did not finish within ${ms} ms.`;
  }
}

/** The phases of one gateway call, as its timeouts see them. */
interface CallTimer {
  /** Response headers arrived: the idle clock starts. */
  headers(): void;
  /** A body chunk arrived. Cheap: one clock read, no timer work. */
  chunk(): void;
  /** The client is slow to read: upstream silence is not the upstream's fault meanwhile. */
  pause(): void;
  resume(): void;
  stop(): void;
}

/**
 * One timer per call for all its timeouts (headers, idle, total). A chunk only moves the idle
 * deadline later, so it just notes the time; the timer, when it fires, checks what is really
 * due and sleeps again if nothing is. Only a deadline moving earlier re-arms it.
 */
export function startCallTimer(
  t: Required<ProxyTimeouts>,
  onTimeout: (kind: TimeoutKind, ms: number) => void,
  now: () => number = () => performance.now(),
): CallTimer {
  const start = now();
  const totalDue = start + t.totalMs;
  let phase: 'headers' | 'idle' | 'paused' | 'done' = 'headers';
  let since = start;
  let timer: NodeJS.Timeout | null = null;
  let armedFor = Number.POSITIVE_INFINITY;

  const due = () =>
    phase === 'headers'
      ? Math.min(totalDue, since + t.headersMs)
      : phase === 'idle'
        ? Math.min(totalDue, since + t.idleMs)
        : totalDue;
  const arm = (at: number) => {
    if (timer) clearTimeout(timer);
    armedFor = at;
    timer = setTimeout(check, Math.max(0, at - now()));
  };
  function check() {
    timer = null;
    armedFor = Number.POSITIVE_INFINITY;
    if (phase === 'done') return;
    const at = now();
    if (at >= totalDue) return fire('total', t.totalMs);
    if (phase === 'headers' && at >= since + t.headersMs) return fire('headers', t.headersMs);
    if (phase === 'idle' && at >= since + t.idleMs) return fire('idle', t.idleMs);
    arm(due());
  }
  const fire = (kind: TimeoutKind, ms: number) => {
    phase = 'done';
    onTimeout(kind, ms);
  };
  const moved = () => {
    const next = due();
    if (next < armedFor) arm(next);
  };
  arm(due());

  return {
    headers() {
      if (phase === 'done') return;
      phase = 'idle';
      since = now();
      moved();
    },
    chunk() {
      if (phase === 'idle') since = now();
    },
    pause() {
      if (phase === 'idle') phase = 'paused';
    },
    resume() {
      if (phase !== 'paused') return;
      phase = 'idle';
      since = now();
      moved();
    },
    stop() {
      phase = 'done';
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
