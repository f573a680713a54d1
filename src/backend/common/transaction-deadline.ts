import { BackendError } from '../../errors';

/** The error of a transaction that ran past its time limit (every backend throws this same one). */
export const transactionTimedOut = (timeoutMs: number): BackendError =>
  new BackendError(
    'TRANSACTION_TIMED_OUT',
    `transaction ran longer than ${timeoutMs} ms; keep transaction bodies short (slow work belongs in @OnLocked or actions)`,
  );

/**
 * Resolves with `work`, or rejects with TRANSACTION_TIMED_OUT (calling `onTimeout` first) after `ms`:
 * one timer per call, for engines that run transactions concurrently (FoundationDB). Engines that run
 * one at a time use a `TransactionDeadline` instead. `limitMs` is the limit the error names (`ms` may
 * be what is left of it).
 */
export async function withinTimeLimit<T>(
  work: PromiseLike<T>,
  ms: number,
  onTimeout: () => void,
  limitMs: number = ms,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(transactionTimedOut(limitMs));
      }, ms);
      work.then(resolve, reject);
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The time limit of the transactions of one backend, which run one at a time, on one reusable timer:
 * creating and clearing a timer for every transaction costs more than the rest of the engine's
 * bookkeeping. A timer left from an earlier transaction is kept (unref'd while idle, so it never holds
 * the process open); when it fires it checks the current transaction's deadline and re-arms for the
 * remainder if that one started later.
 */
export class TransactionDeadline {
  private timer: NodeJS.Timeout | undefined;
  /** When the scheduled timer fires (performance.now() ms), or 0 if none is scheduled. */
  private firesAt = 0;
  private deadline = 0;
  private onExpire: (() => void) | undefined;

  /** Calls `onExpire` if `stop` is not called within `timeoutMs`. */
  start(timeoutMs: number, onExpire: () => void): void {
    const now = performance.now();
    this.deadline = now + timeoutMs;
    this.onExpire = onExpire;
    if (this.timer && this.firesAt !== 0 && this.firesAt <= this.deadline) this.timer.ref();
    else this.schedule(timeoutMs, now);
  }

  stop(): void {
    this.onExpire = undefined;
    this.timer?.unref();
  }

  dispose(): void {
    this.onExpire = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.firesAt = 0;
  }

  private schedule(ms: number, now: number): void {
    clearTimeout(this.timer);
    this.firesAt = now + ms;
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.firesAt = 0;
    const expire = this.onExpire;
    if (!expire) return;
    const now = performance.now();
    if (now >= this.deadline - 1) {
      this.onExpire = undefined;
      expire();
    } else this.schedule(this.deadline - now, now);
  }
}
