import { TimerStore, type AheadTimer, type DueTimer } from './timer-store';

/**
 * How many keyed timers past those it takes an offered handling reads ahead (see timersDue): timers
 * spread over time fall due one at a time, and each one read ahead costs its record's read.
 */
export const TIMERS_AHEAD = 1;

/**
 * Of the keyed timers read ahead by the transaction that handled the last offered ones
 * (TimerStore.checkTaken), those due by `now`, as peekDue would read them: undefined if none. The next
 * offer plans on them and on the state that transaction committed (cached), without step 1's snapshot
 * read, as a long queue's next batch does (the consumer's `ahead`). Its transaction checks them as
 * ever — still the first of the index and unchanged, the queue empty, the state version the same, no
 * lock, no other consumer — and if anything changed, the offer goes to the next step, which reads.
 */
export function timersDue(ahead: readonly AheadTimer[] | undefined, now: number): DueTimer[] | undefined {
  if (!ahead) return undefined;
  let n = 0;
  while (n < ahead.length && ahead[n].due <= now) n++;
  return n === 0 ? undefined : ahead.slice(0, n).map((t) => TimerStore.dueOf(t));
}
