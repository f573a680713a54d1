import type { Transaction } from '../backend/types';
import { DurableQueue } from './durable-queue';
import type { Handling } from './handling';
import { LockRecords } from './lock-record';
import type { ServerContext } from './server-context';
import { afterCommit, type Step, type StepResult } from './step-result';

/**
 * A consumer step with nothing to handle as read: in a transaction, wait for the lock or a push — or go
 * again if one came meanwhile. Clears an expired lock, and collects abandoned caller keys now and then.
 */
export async function idleStep(
  ctx: ServerContext,
  handling: Handling,
  sweepAbandonedCalls: (tx: Transaction) => void,
): Promise<Step> {
  const keys = ctx.keys;
  let expired: { owner: string } | undefined;
  const r = await ctx.tenant.transact(async (tx): Promise<StepResult | undefined> => {
    // All reads at once (one round trip on a remote backend). A newer version's start wakes this
    // consumer (DurableQueue.notify) with nothing queued: it must look at the state's version here, or
    // it goes back to waiting, holding the consumer lease, and never steps aside (versioned-state.ts).
    const [lockRec, head, timers] = await Promise.all([
      LockRecords.read(tx, keys),
      DurableQueue.peekKeys(tx, keys, 1),
      ctx.timers.read(tx),
      ctx.state.assertCurrent?.(tx),
    ]);
    if (lockRec && lockRec.leaseUntil > Date.now()) {
      ctx.timers.observed(timers);
      return { wait: DurableQueue.watchPush(tx, keys), retryAt: lockRec.leaseUntil + 1 };
    }
    expired = lockRec;
    if (lockRec) tx.clear(keys.lock);
    sweepAbandonedCalls(tx);
    if (head.length > 0) return undefined; // pushed meanwhile
    ctx.timers.observed(timers); // the next timer due, as of the watch (src/timers)
    return { wait: DurableQueue.watchPush(tx, keys) };
  });
  if (expired) ctx.emit({ type: 'lock-expired', owner: expired.owner });
  return r ? afterCommit(ctx, handling, r) : { type: 'handled' };
}
