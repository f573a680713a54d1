/**
 * Where durable timers and idle timeouts take the time from. The system clock by default; a test
 * passes a VirtualClock (`dgen-ts/testing`) as the `clock` start option to move time by hand.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` once `now()` has reached `at` (or soon after); the returned function cancels it. `fn`
   * may return a promise (the scheduler's firing): a virtual clock awaits it.
   */
  at(at: number, fn: () => unknown): () => void;
}

/** The wall clock, with Node timers that do not keep the process alive on their own. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  at(at: number, fn: () => unknown): () => void {
    // Node clamps delays above 2^31-1 ms to 1 ms: wake at most every 24 days and look again.
    const wait = Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1);
    const t = setTimeout(fn, wait);
    t.unref();
    return () => clearTimeout(t);
  },
});

export function isClock(v: unknown): v is Clock {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Clock).now === 'function' &&
    typeof (v as Clock).at === 'function'
  );
}
