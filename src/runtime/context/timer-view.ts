import type { ReadTransaction } from '../../backend/types';
import { TimerStore } from '../../timers/timer-store';
import type { ServerKeys } from '../server-keys';

/** How a view reads: a snapshot of its own (handlers outside a transaction), or the handler's transaction. */
export type TimerReader = <T>(fn: (tx: ReadTransaction) => Promise<T>) => Promise<T>;

/**
 * What the handlers of one batch (or one handling) are told of their server's timers, for
 * `ctx.cancelTimer`'s answer (whether one was pending). Handlers run outside the transaction that
 * writes their effects, as they do for the state, so the answer is read the same way: the stored timer
 * as read, updated by what this handler and the ones before it in the batch asked (set or cancelled).
 * The transaction that writes their effects checks that every timer read is still as read (`holds`),
 * and if one is not — it fired, or another process set or cancelled it — writes nothing and runs the
 * handlers again, as when the state changed. So an answer is the one the commit makes true.
 * Reads happen only for a key asked about; a batch that cancels nothing reads and checks nothing.
 */
export class TimerView {
  /** The stored timers read, by key: whether one was pending. */
  private read?: Map<string, Promise<boolean>>;
  /** Whether one is pending after the asks so far (this batch's own sets and cancels). */
  private asked?: Map<string, boolean>;
  /** A read that failed (the backend): the error to report instead of the handler's. */
  failure?: unknown;

  constructor(
    private readonly keys: ServerKeys,
    private readonly reader: TimerReader,
  ) {}

  /** A handler set timer `key`. */
  set(key: string): void {
    (this.asked ??= new Map()).set(key, true);
  }

  /** A handler cancels timer `key`: whether one was pending before (from the asks, else as stored). */
  cancel(key: string): Promise<boolean> {
    const known = this.asked?.get(key);
    (this.asked ??= new Map()).set(key, false);
    return known !== undefined ? Promise.resolve(known) : this.stored(key);
  }

  private stored(key: string): Promise<boolean> {
    const read = (this.read ??= new Map());
    let p = read.get(key);
    if (p === undefined) {
      p = this.reader((tx) => TimerStore.has(tx, this.keys, key));
      p.catch((error: unknown) => (this.failure ??= error)); // also when the handler did not await it
      read.set(key, p);
    }
    return p;
  }

  /** Whether the view read anything that the writing transaction must check. */
  get hasReads(): boolean {
    return this.read !== undefined;
  }

  /** Waits for the reads a handler started (and maybe did not await): the set to check is complete. */
  async settled(): Promise<void> {
    if (this.read) await Promise.all(this.read.values());
  }

  /** In the writing transaction: every timer read is still as read. */
  async holds(tx: ReadTransaction): Promise<boolean> {
    if (!this.read) return true;
    const checks = [...this.read].map(
      async ([key, p]) => (await TimerStore.has(tx, this.keys, key)) === (await p),
    );
    return (await Promise.all(checks)).every(Boolean);
  }
}

/**
 * A handler's result once the timer reads it started have settled (so the set the commit checks is
 * complete). A read that failed is the backend's error, not the handler's: it is what is thrown, also
 * when the handler threw because of it, so the message is retried rather than counted as failing.
 */
export async function settledIn<R>(view: TimerView, run: Promise<R>): Promise<R> {
  let result: R;
  try {
    result = await run;
  } catch (error) {
    if (view.hasReads) await view.settled().catch(() => undefined);
    throw view.failure ?? error;
  }
  if (!view.hasReads) return result; // the usual case: no ctx.cancelTimer awaited, nothing to wait for
  await view.settled().catch(() => undefined);
  if (view.failure !== undefined) throw view.failure;
  return result;
}
