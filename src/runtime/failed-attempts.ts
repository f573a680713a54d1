import type { DgenError } from '../errors';
import { deadLetterIn } from '../ops/on-dead-letter';
import { traceFailure } from '../telemetry/spans';
import { CallChannel, toRecord } from './call-channel';
import { DurableQueue } from './durable-queue';
import type { ServerContext } from './server-context';
import { decodeWire, encodeWire, type QueueItem } from './wire';

/** A handler failed on the head item: count the attempt; at maxAttempts move it to the dead letters. */
export async function recordFailedAttempt(
  ctx: ServerContext,
  key: Buffer,
  item: QueueItem,
  error: DgenError,
): Promise<void> {
  const attempt = await ctx.tenant.transact(async (tx) => {
    const raw = await tx.get(ctx.keys.attempts);
    const prev = raw ? decodeWire<{ key: Buffer; n: number }>(raw) : undefined;
    const n = prev && Buffer.from(prev.key).equals(key) ? prev.n + 1 : 1;
    if ((await tx.get(key)) === undefined) return n; // another consumer dealt with it
    if (n < ctx.opts.maxAttempts) {
      tx.set(ctx.keys.attempts, encodeWire({ key, n }));
      return n;
    }
    DurableQueue.pop(tx, ctx.keys, key);
    tx.clear(ctx.keys.attempts);
    await deadLetterIn(tx, ctx, { msg: item.msg, error: error.message, attempts: n }); // ops hook
    if (item.kind === 'call') await CallChannel.answer(tx, ctx.keys, item.from, toRecord(error));
    return n;
  });
  ctx.emit({ type: 'handler-failed', kind: item.kind, error, attempt });
  traceFailure(ctx, item, error, attempt, attempt >= ctx.opts.maxAttempts); // ops hook: telemetry
  if (attempt >= ctx.opts.maxAttempts) ctx.emit({ type: 'dead-lettered', msg: item.msg });
}
