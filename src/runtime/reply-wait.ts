import type { Tenant, Watch } from '../backend/types';
import { CallTimeoutError, StoppedError } from '../errors';
import { CallChannel, fromRecord } from './call-channel';
import { LockRecords } from './lock-record';
import type { ServerKeys } from './server-keys';
import type { FromId } from './wire';

/**
 * The caller's side of a durable call: wait on the pending marker's watch until the reply is in place
 * or the timeout passes, then read it and clear the caller's keys (also on timeout). `onCancel` gets a
 * function that makes the wait reject with STOPPED, and returns how to forget it again.
 */
export async function awaitDurableReply(
  tenant: Tenant,
  keys: ServerKeys,
  from: FromId,
  watch: Watch,
  timeout: number,
  onCancel: (cancel: () => void) => () => void,
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
      const reply = await tenant.transact(async (tx) => {
        const rec = await CallChannel.read(tx, keys, from);
        if (rec || !fired || Date.now() >= deadline) CallChannel.close(tx, keys, from);
        if (!rec && fired && Date.now() < deadline) return { rewatch: tx.watch(keys.pendingMarker(from)) };
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
