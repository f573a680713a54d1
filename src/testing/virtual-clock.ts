import { BadArgumentError } from '../errors';
import type { Clock } from '../kernel/clock';

interface Pending {
  at: number;
  fn: () => unknown;
}

/** Lets work that a commit set off (a consumer's after-commit step) run before time moves. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/**
 * A clock that moves only when told, for tests of durable timers and idle timeouts: start servers
 * with `{ clock }`, then `await clock.advance(ms)`. Advancing runs, in due order, what came due and
 * awaits it (the timers' messages are then in their queues: a following `ref.call` is handled after
 * them). Timers stay durable: a VirtualClock only decides when "now" is.
 */
export class VirtualClock implements Clock {
  private t: number;
  private readonly pending = new Set<Pending>();
  private flushing?: Promise<void>;

  constructor(start: number = Date.UTC(2030, 0, 1)) {
    if (typeof start !== 'number' || !Number.isFinite(start))
      throw new BadArgumentError('BAD_ARGUMENT', 'VirtualClock(start) takes ms since the epoch');
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  at(at: number, fn: () => unknown): () => void {
    const p: Pending = { at, fn };
    this.pending.add(p);
    if (at <= this.t) setImmediate(() => void this.flush());
    return () => this.pending.delete(p);
  }

  /** How many wake-ups are scheduled on this clock (the runtime keeps one per tenant, not one per timer). */
  get scheduled(): number {
    return this.pending.size;
  }

  /** Moves time forward by `ms` and runs (and awaits) what falls due, earliest first. */
  async advance(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `advance(ms) takes a finite number of ms, 0 or more (got ${String(ms)})`,
      );
    await settle();
    this.t += ms;
    await this.flush();
  }

  /** Moves time forward to `time` (ms since the epoch); nothing if it is already past. */
  async advanceTo(time: number): Promise<void> {
    await this.advance(Math.max(0, time - this.t));
  }

  /** Runs everything due by now, including what running it makes due (a timer firing in batches). */
  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    const run = async () => {
      for (;;) {
        let next: Pending | undefined;
        for (const p of this.pending) if (p.at <= this.t && (!next || p.at < next.at)) next = p;
        if (!next) break;
        this.pending.delete(next);
        await next.fn();
        await settle();
      }
    };
    this.flushing = run();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }
}
