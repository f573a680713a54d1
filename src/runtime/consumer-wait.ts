import type { Watch } from '../backend/types';

interface Armed {
  watch?: Watch;
  timer?: NodeJS.Timeout;
  fired?: boolean;
  fire: () => void;
}

/**
 * What a consumer waits on between drains: a watch on its queue (or lease), a time to look again
 * (a lock's or another consumer's lease running out), or both. The first to come wakes it, once.
 */
export class ConsumerWait {
  private armed?: Armed;

  /** `consumer`: who is woken (an object rather than two closures: a process may run 10,000 consumers). */
  constructor(private readonly consumer: { wake(): void; readonly isStopped: boolean }) {}

  /**
   * Waiting on the queue alone: its queue was empty as of its last transaction, with no lock or
   * other consumer to wait out (those come with a time to look again).
   */
  get onQueueOnly(): boolean {
    return this.armed?.watch !== undefined && this.armed.timer === undefined;
  }

  arm(watch: Watch | undefined, retryAt?: number): void {
    this.disarm();
    if (this.consumer.isStopped) return watch?.cancel(); // a handler of the last batch stopped the server
    const armed: Armed = { watch, fire: () => undefined };
    armed.fire = () => {
      if (armed.fired || this.consumer.isStopped) return;
      armed.fired = true;
      if (this.armed === armed) this.disarm();
      this.consumer.wake();
    };
    // A watch that ends unchanged while still armed was cancelled under us (the backend closed): look
    // again, so the consumer finds BACKEND_CLOSED and stops instead of waiting for ever.
    watch?.changed.then((changed) => (changed || this.armed === armed) && armed.fire());
    if (retryAt !== undefined) armed.timer = setTimeout(armed.fire, Math.max(0, retryAt - Date.now()));
    this.armed = armed;
  }

  /** Wakes the consumer now, as if what it waits on had come. */
  wakeNow(): void {
    this.armed?.fire();
  }

  disarm(): void {
    if (!this.armed) return;
    this.armed.watch?.cancel();
    clearTimeout(this.armed.timer);
    this.armed = undefined;
  }
}
