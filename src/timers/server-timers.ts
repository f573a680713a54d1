import type { ReadTransaction } from '../backend/types';
import type { Clock } from '../kernel/clock';
import { TimerScheduler, type TimerOwner } from './scheduler';
import { TimerStore } from './timer-store';

/**
 * One server process's side of its timers: it tells this process's scheduler (when it consumes) of
 * every due it learns, and remembers whether an idle timeout may be armed (so a server that never
 * asks for one writes nothing for it).
 */
export class ServerTimers {
  private consuming = false;
  /**
   * Whether an idle timeout may be stored: true until a consumer transaction finds none; set again
   * by arming one here, or by the consumer noticing one armed elsewhere (arming wakes it).
   */
  idleMaybe = true;

  constructor(
    private readonly owner: TimerOwner,
    readonly clock: Clock,
  ) {}

  /** This process consumes the server: its timers fire here (too). */
  consume(): void {
    this.consuming = true;
  }

  note(due: number | undefined): void {
    if (this.consuming) TimerScheduler.of(this.owner.tenant, this.clock).note(this.owner, due);
  }

  /**
   * In the transaction where the consumer arms its watch on the queue: the next due as of that
   * transaction. Setting a timer wakes that watch, so no due set elsewhere goes unnoticed.
   */
  async observe(tx: ReadTransaction): Promise<void> {
    this.observed(await this.read(tx));
  }

  /** `observe` in two halves, so that a transaction can send the read along with its other reads. */
  read(tx: ReadTransaction): Promise<{ next?: number; idle: boolean }> {
    return TimerStore.nextDueAndIdle(tx, this.owner.keys);
  }

  observed(r: { next?: number; idle: boolean }): void {
    this.idleMaybe = r.idle;
    this.note(r.next);
  }

  stop(): void {
    if (this.consuming) TimerScheduler.of(this.owner.tenant, this.clock).forget(this.owner);
  }
}
