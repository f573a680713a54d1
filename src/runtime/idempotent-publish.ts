import type { Watch } from '../backend/types';
import { BadArgumentError, CallTimeoutError, DgenError, StoppedError } from '../errors';
import { CallChannel, fromRecord } from './call-channel';
import { DurableQueue } from './durable-queue';
import { IdempotencyKeys } from './idempotency';
import type { ServerProcess } from './server-process';
import type { FromId } from './wire';

/**
 * `cast`/`castMany` with an idempotency key: the messages are enqueued in the transaction that claims
 * the key, or not at all when the key was seen within the retention window. Resolves either way.
 */
export async function castOnce(p: ServerProcess, msgs: readonly unknown[], key: string): Promise<void> {
  if (p.isStopped) throw new StoppedError();
  await p.tenant.transact(async (tx) => {
    const claim = await IdempotencyKeys.claim(tx, p.keys, key, 'cast', p.opts.idempotencyRetentionMs);
    if (claim.fresh && msgs.length > 0)
      DurableQueue.push(
        tx,
        p.keys,
        msgs.map((msg) => ({ kind: 'cast', msg })),
      );
  });
}

/**
 * `call` with an idempotency key. The first call claims the key and is queued (never handled inline:
 * the reply must be stored under the key by the consumer that handles it); a repeat within the window
 * is not queued but resolves with the first call's reply — at once when it is stored, else when the
 * consumer stores it (the repeat watches the key's record), whichever process made the first call.
 */
export async function callOnce(
  p: ServerProcess,
  msg: unknown,
  key: string,
  timeout: number,
): Promise<unknown> {
  if (p.isStopped) throw new StoppedError();
  const [deadline, id] = CallChannel.newFrom(timeout);
  const from: FromId = [deadline, id, key];
  const r = await p.track(
    p.tenant.transact(async (tx) => {
      const claim = await IdempotencyKeys.claim(tx, p.keys, key, 'call', p.opts.idempotencyRetentionMs);
      if (claim.fresh) {
        const watch = CallChannel.open(tx, p.keys, from);
        DurableQueue.push(tx, p.keys, [{ kind: 'call', msg, from }]);
        return { kind: 'first' as const, watch };
      }
      if (claim.kind !== 'call')
        throw new BadArgumentError(
          'BAD_ARGUMENT',
          `idempotency key ${JSON.stringify(key)} was used by a cast of this server; a call needs a key of its own`,
        );
      const got = await IdempotencyKeys.readReply(tx, p.keys, key);
      if (got.reply) return { kind: 'stored' as const, reply: got.reply };
      return { kind: 'repeat' as const, watch: tx.watch(IdempotencyKeys.recordKey(p.keys, key)) };
    }),
  );
  if (r.kind === 'stored') return fromRecord(r.reply);
  if (r.kind === 'first') return p.awaitReply(from, r.watch, timeout);
  return awaitStoredReply(p, key, r.watch, timeout);
}

/** A repeated call waits for the first call's reply to be stored under the key, until `timeout`. */
async function awaitStoredReply(
  p: ServerProcess,
  key: string,
  watch: Watch,
  timeout: number,
): Promise<unknown> {
  const deadline = Date.now() + timeout;
  let cancelled = false;
  const forget = p.onStop(() => {
    cancelled = true;
    watch.cancel();
  });
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        watch.changed,
        new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
      if (cancelled) throw new StoppedError();
      const r = await p.tenant.transact(async (tx) => {
        const got = await IdempotencyKeys.readReply(tx, p.keys, key);
        if (got.reply || !got.live || Date.now() >= deadline) return got;
        return { ...got, rewatch: tx.watch(IdempotencyKeys.recordKey(p.keys, key)) };
      });
      if (r.reply) return fromRecord(r.reply);
      if (!r.live)
        throw new DgenError(
          'NOT_FOUND',
          `idempotency key ${JSON.stringify(key)} expired (or its server was killed) before its first call was answered`,
        );
      if (!('rewatch' in r))
        throw new CallTimeoutError(
          'CALL_TIMEOUT',
          `call got no reply within ${timeout} ms: the first call with idempotency key ${JSON.stringify(key)} has not been answered yet; is a consumer running for this server?`,
        );
      watch.cancel();
      watch = r.rewatch;
    }
  } finally {
    watch.cancel();
    forget();
  }
}
