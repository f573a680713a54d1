import { TimerStore, type AheadTimer, type DueTimer } from './timer-store';

/**
 * How many keyed timers past those it takes an offered handling reads ahead (see TimersAhead): timers
 * spread over time fall due one at a time, and each one read ahead costs its record's read.
 */
export const TIMERS_AHEAD = 1;

/**
 * The keyed timers due next after an offered handling, read by its transaction (TimerStore.checkTaken):
 * the next offer plans on those due by then and on the state that transaction committed (cached),
 * without step 1's snapshot read, as a long queue's next batch does (the consumer's `ahead`). Its
 * transaction checks them as ever — still the first of the index and unchanged, the queue empty, the
 * state version the same, no lock, no other consumer — and if anything changed, the offer goes to the
 * next step, which reads (step 1). Valid for the next step only.
 */
export class TimersAhead {
  private timers: AheadTimer[] | undefined;

  /** After an offered handling committed: the timers it read ahead (none while an idle timeout is armed: its rules are `fire`'s). */
  set(timers: AheadTimer[] | undefined): void {
    this.timers = timers !== undefined && timers.length > 0 ? timers : undefined;
  }

  /** Those due by `now` (forgetting them all): undefined if none, and then step 1 reads. */
  take(now: number): DueTimer[] | undefined {
    const timers = this.timers;
    this.timers = undefined;
    if (!timers) return undefined;
    let n = 0;
    while (n < timers.length && timers[n].due <= now) n++;
    return n === 0 ? undefined : timers.slice(0, n).map((t) => TimerStore.dueOf(t));
  }

  clear(): void {
    this.timers = undefined;
  }
}
