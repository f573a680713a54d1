/**
 * A FIFO async mutex: one holder at a time within this process. `tryLock` takes a free lock without
 * going through the event loop, which keeps an uncontended transaction free of extra promise hops.
 */
export class Mutex {
  private locked = false;
  private readonly waiters: Array<() => void> = [];

  /** Takes the lock if it is free (and nobody is queued); returns whether it did. */
  tryLock(): boolean {
    if (this.locked) return false;
    this.locked = true;
    return true;
  }

  /** Resolves once the lock is held by the caller. */
  lock(): Promise<void> {
    if (this.tryLock()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Hands the lock to the next waiter, in arrival order, or frees it. */
  unlock(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.locked = false;
  }

  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    if (!this.tryLock()) await this.lock();
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }
}
