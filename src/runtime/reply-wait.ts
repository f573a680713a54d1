import type { Tenant, Watch } from '../backend/types';
import { CallTimeoutError, StoppedError } from '../errors';
import { CallChannel, fromRecord } from './call-channel';
import { LockRecords } from './lock-record';
import { ReplyReads } from './reply-reads';
import type { ServerKeys } from './server-keys';
import type { FromId } from './wire';

/**
 * The caller's side of a durable call: wait on the pending marker's watch until the reply is in place
 * or the timeout passes. A small reply comes with the watch where the backend knows the value that fired
 * it (CallChannel.firedReply: no read at all); else it is read with a snapshot read (shared by the
 * callers of this process woken together, see ReplyReads), not a transaction. Either way a call costs two
 * commits in all (the push, the consumer's handling with the reply): `spent` gets the caller's keys to
 * clear in a later transaction of this process (the next push), and the consumer's sweep collects them
 * if none comes. On timeout the keys are cleared at once (so a late reply is not written). `onCancel`
 * gets a function that makes the wait reject with STOPPED, and returns how to forget it again.
 */
export async function awaitDurableReply(
  tenant: Tenant,
  keys: ServerKeys,
  from: FromId,
  watch: Watch,
  timeout: number,
  onCancel: (cancel: () => void) => () => void,
  spent: (keys: Buffer[]) => void,
): Promise<unknown> {
  const deadline = Date.now() + timeout;
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const forget = onCancel(() => {
    cancelled = true;
    watch.cancel();
  });
  try {
    for (;;) {
      const left = deadline - Date.now();
      const fired = await Promise.race([
        watch.changed,
        new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, left)))),
      ]);
      clearTimeout(timer);
      if (cancelled) throw new StoppedError();
      if (fired) {
        // The reply came with the watch (small replies, see CallChannel.firedReply), or is read, in a
        // read shared with callers woken alongside.
        const got = CallChannel.firedReply(keys, from, watch) ?? (await ReplyReads.read(tenant, keys, from));
        if (got) {
          spent(got.keys);
          return fromRecord(got.record);
        }
      }
      // No reply yet: the watch fired for another change, or time is up. Decide in a transaction, so a
      // reply committed meanwhile is either read or never written (the marker is cleared).
      const reply = await tenant.transact(async (tx) => {
        const rec = await CallChannel.read(tx, keys, from);
        if (rec || Date.now() >= deadline) CallChannel.close(tx, keys, from);
        if (!rec && Date.now() < deadline) return { rewatch: tx.watch(keys.pendingMarker(from)) };
        return { rec };
      });
      if ('rewatch' in reply && reply.rewatch) {
        watch = reply.rewatch;
        continue;
      }
      if ('rec' in reply && reply.rec) return fromRecord(reply.rec);
      throw new CallTimeoutError('CALL_TIMEOUT', await timeoutMessage(tenant, keys, timeout));
    }
  } finally {
    watch.cancel();
    forget();
  }
}

/** Why a call may have got no reply: the server is locked (by whom, until when), or nobody consumes. */
async function timeoutMessage(tenant: Tenant, keys: ServerKeys, timeout: number): Promise<string> {
  const lock = await tenant.read((tx) => LockRecords.read(tx, keys)).catch(() => undefined);
  if (lock && lock.leaseUntil > Date.now())
    return (
      `call got no reply within ${timeout} ms: the server is locked by ${lock.owner} until ` +
      `${new Date(lock.leaseUntil).toISOString()} (its @OnLocked handler is running; queued messages wait for it)`
    );
  return `call got no reply within ${timeout} ms; is a consumer running for this server?`;
}
