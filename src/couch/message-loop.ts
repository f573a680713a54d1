import type { FollowerCore } from './follower-core';
import { StopSignal } from './follower-core';
import { Mailbox } from './mailbox';
import { handleMessage, type Message } from './message-dispatch';

/**
 * The follower's mailbox and the one place messages are handled: between rows, while waiting for the
 * feed, and while waiting to reconnect — never at the same time as another handler. A stop request
 * unwinds the loop (StopSignal) at the next of these points.
 */
export class MessageLoop<S> {
  private readonly mailbox = new Mailbox<Message>();
  private stopRequest: { reason: unknown } | undefined;
  private retryNowRequested = false;

  constructor(private readonly core: FollowerCore<S>) {}

  get stopping(): boolean {
    return this.stopRequest !== undefined;
  }

  push(m: Message): void {
    this.mailbox.push(m);
  }

  /** Asks the loop to stop with `reason` (the first request wins). */
  requestStop(reason: unknown): void {
    this.stopRequest ??= { reason };
    this.mailbox.notify();
  }

  /** Ends the next wait before a connection (see `pause`). */
  requestRetryNow(): void {
    this.retryNowRequested = true;
    this.mailbox.notify();
  }

  /** A new connection begins: an earlier retryNow is used up. */
  connecting(): void {
    this.retryNowRequested = false;
  }

  /** Drops what is still queued (the follower stopped). */
  clear(): void {
    this.mailbox.clear();
  }

  /** Serves what is queued now; undefined (no promise) when nothing is. */
  serveQueued(): Promise<void> | undefined {
    return this.mailbox.size > 0 || this.stopRequest ? this.drain() : undefined;
  }

  /** Settles like `work`, handling messages (and honouring a stop) while it is pending. */
  async serveWhile<T>(work: Promise<T>): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    const settled = work.then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    for (;;) {
      const serving = this.serveQueued();
      if (serving) await serving;
      if (outcome === undefined) await Promise.race([settled, this.mailbox.wake()]);
      if (outcome !== undefined) {
        if (outcome.ok) return outcome.value;
        throw outcome.error;
      }
    }
  }

  /** Waits `ms` (Infinity: until retryNow) before the next connection, serving messages meanwhile. */
  async pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let elapsed = ms <= 0;
    const timeUp =
      ms > 0 && ms !== Infinity
        ? new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              elapsed = true;
              resolve();
            }, ms);
          })
        : undefined;
    try {
      for (;;) {
        await this.drain();
        if (elapsed) return;
        if (this.retryNowRequested) {
          this.retryNowRequested = false;
          return;
        }
        await (timeUp ? Promise.race([timeUp, this.mailbox.wake()]) : this.mailbox.wake());
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Handles every queued message; throws StopSignal when a stop was asked for. */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopRequest) throw new StopSignal(this.stopRequest.reason);
      const m = this.mailbox.shift();
      if (m === undefined) return;
      await handleMessage(this.core, m);
    }
  }
}
