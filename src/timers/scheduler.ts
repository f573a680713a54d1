import type { Tenant } from '../backend/types';
import { DgenError } from '../errors';
import type { ServerKeys } from '../runtime/server-keys';
import type { Clock } from '../kernel/clock';
import type { OfferOutcome } from './timer-offer';
import { TimerStore } from './timer-store';

/** What the scheduler needs of a consuming server. */
export interface TimerOwner {
  readonly keys: ServerKeys;
  readonly tenant: Tenant;
  readonly isStopped: boolean;
  emit(e: { type: 'timer-error'; error: unknown }): void;
  /**
   * Offers the owner's consumer the timers due at `now` to handle straight away (see TimerOffer);
   * undefined when it cannot take them here (no consumer, stopped, waiting out a lock or another
   * consumer), and the scheduler fires them into the queue.
   */
  offerTimers?(now: number): Promise<OfferOutcome> | undefined;
}

interface Entry {
  /** The earliest due this process knows of (never later than the stored one: see note). */
  due: number;
  /** Bumped by every note: a fire that read the next due before a note must not overwrite it. */
  gen: number;
  /** An offer of these timers was declined: fire them into the queue next time. */
  fireNext?: boolean;
}

/** Most servers one fire transaction serves (each moves up to FIRE_BATCH timers). */
const SERVERS_PER_FIRE = 128;

/** Wait after a failed fire transaction before trying that server again. */
const RETRY_MS = 100;

/**
 * The timers of every server this process consumes on one tenant, with one clock timer for the
 * earliest due among them (not one per timer: a process may have 100,000 pending). It holds one
 * number per server. A due it holds may be too early (a timer was cancelled or moved): firing then
 * finds nothing and reads the next one. It is never too late: every way a timer is set reaches
 * `note` (this process's writes directly; another process's through the consumer's wake-up, which
 * reads the next due in the same transaction that arms its watch).
 */
export class TimerScheduler {
  private static readonly all = new WeakMap<Tenant, Map<Clock, TimerScheduler>>();

  static of(tenant: Tenant, clock: Clock): TimerScheduler {
    let byClock = TimerScheduler.all.get(tenant);
    if (!byClock) TimerScheduler.all.set(tenant, (byClock = new Map()));
    let s = byClock.get(clock);
    if (!s) byClock.set(clock, (s = new TimerScheduler(clock)));
    return s;
  }

  private readonly entries = new Map<TimerOwner, Entry>();
  private armed?: { at: number; cancel: () => void };

  private running = false;

  private constructor(private readonly clock: Clock) {}

  /** `owner` has a timer due at `due` (or may have none: undefined). Keeps the earlier of the two. */
  note(owner: TimerOwner, due: number | undefined): void {
    if (due === undefined || owner.isStopped) return;
    const e = this.entries.get(owner);
    if (e) {
      e.gen++;
      if (due >= e.due) return;
      e.due = due;
    } else this.entries.set(owner, { due, gen: 0 });
    this.reschedule();
  }

  forget(owner: TimerOwner): void {
    if (this.entries.delete(owner)) this.reschedule();
  }

  /** How many servers have a due here, and how many clock timers are armed (at most one). */
  get size(): { servers: number; clockTimers: number } {
    return { servers: this.entries.size, clockTimers: this.armed ? 1 : 0 };
  }

  private reschedule(): void {
    if (this.running) return; // tick reschedules when it ends
    let min = Infinity;
    for (const e of this.entries.values()) if (e.due < min) min = e.due;
    if (this.armed?.at === min) return;
    this.armed?.cancel();
    this.armed = undefined;
    if (min === Infinity) return;
    const armed: { at: number; cancel: () => void } = { at: min, cancel: () => undefined };
    armed.cancel = this.clock.at(min, () => this.tick(armed));
    this.armed = armed;
  }

  /**
   * The clock reached the earliest due: offer each server whose due has come to its consumer here,
   * and fire the others, earliest first. Resolves once the fires committed and the offers were taken
   * or declined (a virtual clock awaits that; new ticks need only the fires to be done).
   */
  private async tick(armed: { at: number }): Promise<void> {
    if (this.armed !== armed || this.running) return;
    this.armed = undefined;
    this.running = true;
    const offers: Array<Promise<unknown>> = [];
    try {
      const now = this.clock.now();
      const due = [...this.entries].filter(([o, e]) => e.due <= now && !o.isStopped);
      due.sort((a, b) => a[1].due - b[1].due);
      for (const [o] of this.entries) if (o.isStopped) this.entries.delete(o);
      const toFire = due.filter((d) => !this.offer(d, now, offers));
      for (let i = 0; i < toFire.length; i += SERVERS_PER_FIRE)
        await this.fire(toFire.slice(i, i + SERVERS_PER_FIRE), now);
    } finally {
      this.running = false;
      this.reschedule();
    }
    await Promise.all(offers);
  }

  /**
   * Offers a server's due timers to its consumer here, idle or busy handling (TimerOffer); false when
   * it cannot take them now (stopped, waiting out a lock or another consumer), or declined them last
   * time. An offer still open answers for itself. While the offer is open the entry waits (due
   * Infinity) for the consumer's transaction, which notes the next due as it commits; a note meanwhile
   * brings the entry back (a fire then and the consumer's transaction cannot both take a timer: the
   * one that commits second finds it gone). A declined offer is fired at once.
   */
  private offer([owner, e]: [TimerOwner, Entry], now: number, offers: Array<Promise<unknown>>): boolean {
    if (e.fireNext) {
      e.fireNext = false;
      return false;
    }
    const outcome = owner.offerTimers?.(now);
    if (!outcome) return false;
    e.due = Infinity;
    const settled = outcome.then((o) => {
      if (this.entries.get(owner) !== e) return;
      if (o === 'declined') {
        e.due = Math.min(e.due, this.clock.now());
        e.fireNext = true;
      } else if (e.due === Infinity) this.entries.delete(owner); // no timer left: the consumer noted none
      this.reschedule();
    });
    offers.push(settled);
    return true;
  }

  /**
   * Fires several servers' due timers in one transaction (they share this tenant): under load, one
   * commit per tick rather than one per server.
   */
  private async fire(due: Array<[TimerOwner, Entry]>, now: number): Promise<void> {
    const gens = due.map(([, e]) => e.gen);
    const tenant = due[0][0].tenant;
    let results: Array<{ next?: number }>;
    try {
      // The fire need not be on disk before its messages are handled (deferFlush): nothing is
      // acknowledged on its strength, and a power cut that loses it loses the timers' deletion with
      // it, so they fire again; the commit that handles a fired message is flushed, and with it the
      // fire (the log keeps commits in order). The consumers start one disk flush sooner.
      results = await tenant.transact(
        async (tx) => {
          const out = [];
          const budget = { bytes: 0 };
          for (const [owner] of due) out.push(await TimerStore.fire(tx, owner.keys, now, budget));
          return out;
        },
        { deferFlush: true },
      );
    } catch (error) {
      const closed = error instanceof DgenError && error.code === 'BACKEND_CLOSED';
      for (const [owner, e] of due) {
        if (closed || owner.isStopped) this.entries.delete(owner);
        else e.due = this.clock.now() + RETRY_MS;
      }
      if (!closed) due[0][0].emit({ type: 'timer-error', error });
      return;
    }
    due.forEach(([owner, e], i) => {
      const next = results[i].next;
      if (this.entries.get(owner) !== e) return;
      if (e.gen === gens[i]) {
        if (next === undefined) this.entries.delete(owner);
        else e.due = next;
      } else if (next !== undefined) e.due = Math.min(e.due, next);
    });
  }
}
