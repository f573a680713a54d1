import type { Transaction } from '../backend/types';
import { BadArgumentError } from '../errors';
import {
  checkDelay,
  checkTimerKey,
  dueAt,
  timerKeyOf,
  type TimerOptions,
} from '../runtime/context/handler-context';
import { Outbox } from '../runtime/context/outbox';
import type { ServerContext } from '../runtime/server-context';
import { TimerStore, type PendingTimer } from './timer-store';

/** What a ServerRef does for its timers and outbox casts (from outside any handler). */
export const RefTimers = {
  async castAfter(p: ServerContext, delayMs: unknown, msg: unknown, options?: TimerOptions): Promise<string> {
    const due = dueAt(p.timers.clock, checkDelay(delayMs, 'ref.castAfter'));
    const key = timerKeyOf(options, 'ref.castAfter');
    Outbox.check(msg);
    await p.tenant.transact(async (tx) => {
      await TimerStore.set(tx, p.keys, key, due, msg);
      TimerStore.notify(tx, p.keys);
    });
    p.timers.note(due);
    return key;
  },

  cancelTimer(p: ServerContext, key: unknown): Promise<boolean> {
    const k = checkTimerKey(key, 'ref.cancelTimer');
    return p.tenant.transact((tx) => TimerStore.cancel(tx, p.keys, k));
  },

  /** Pending timers, earliest due first (the idle timeout is not among them). */
  timers(p: ServerContext): Promise<PendingTimer[]> {
    return p.tenant.read((tx) => TimerStore.list(tx, p.keys));
  },

  /** An outbox cast inside the caller's own transaction on this server's tenant. */
  castIn(p: ServerContext, tx: Transaction, msg: unknown): void {
    if (typeof tx !== 'object' || tx === null || typeof tx.setVersionstampedKey !== 'function')
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        'ref.castIn takes the transaction of tenant.transact(tx => …) on the tenant the server lives in',
      );
    Outbox.cast(tx, p.keys, Outbox.encode(msg));
  },
};
