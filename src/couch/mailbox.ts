/**
 * The follower's message queue plus a wake-up signal: the process loop waits on `wake()` (alongside
 * a feed read or a timer) and anyone who enqueues or asks for attention calls `notify()`.
 */
export class Mailbox<M> {
  private items: M[] = [];
  private head = 0;
  private waiter: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Extra reasons to wake (a stop request, retryNow) that the owner checks itself. */
  private attention = false;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: M): void {
    this.items.push(item);
    this.notify();
  }

  shift(): M | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as never;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns everything queued. */
  clear(): M[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }

  /** Wakes the loop without a message (the owner then checks its flags). */
  notify(): void {
    this.attention = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  /** Resolves at the next `push`/`notify` — at once if one happened since the last `wake()`. */
  wake(): Promise<void> {
    if (this.attention || this.size > 0) {
      this.attention = false;
      return Promise.resolve();
    }
    if (!this.waiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.waiter = { promise, resolve };
    }
    return this.waiter.promise;
  }
}
