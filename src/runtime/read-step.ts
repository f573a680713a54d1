import type { BatchWindow } from './batch-window';
import { ConsumerLease } from './consumer-lease';
import type { Handling } from './handling';
import { LockRecords } from './lock-record';
import type { ServerContext } from './server-context';
import type { TimerOffer } from '../timers/timer-offer';
import { TimerStore } from '../timers/timer-store';

/**
 * Step 1: the lease, the lock, a batch at the head of the queue and the state, from a snapshot —
 * or, when the queue is empty and timers were offered, the due timers instead (`due`, also `items`).
 */
export function readStep(ctx: ServerContext, handling: Handling, window: BatchWindow, offer?: TimerOffer) {
  const keys = ctx.keys;
  return ctx.tenant.read(async (tx) => {
    // Every read at once (one round trip on a remote backend), used in this order.
    const compare = handling.hasCached;
    const [lease, lockRec, queued, version, due] = await Promise.all([
      ConsumerLease.read(tx, keys),
      LockRecords.read(tx, keys),
      window.take(tx),
      compare ? ctx.state.readVersion(tx) : undefined,
      offer && TimerStore.peekDue(tx, keys, offer.now, window.limit),
    ]);
    const standBy = ConsumerLease.heldByOther(lease, ctx.owner);
    if (standBy !== undefined) return { standBy, items: undefined };
    if (lockRec && lockRec.leaseUntil > Date.now()) return undefined;
    const timers = queued.length === 0 && due !== undefined && due.length > 0 ? due : undefined;
    const items = timers ?? queued;
    if (items.length === 0) return undefined;
    const loaded = await handling.load(tx, compare ? Promise.resolve(version) : undefined);
    return { items, loaded, due: timers };
  });
}
