import type { Transaction } from '../../backend/types';
import { DurableQueue } from '../durable-queue';
import type { ServerKeys } from '../server-keys';
import { encodeWire } from '../wire';

/**
 * "Push in this transaction": the one way an outbox cast (`ctx.cast`, `ref.castIn`) reaches a queue.
 * The message commits with whatever else the transaction writes, or not at all.
 */
export const Outbox = {
  /** Refuses a message that would not be stored faithfully (NOT_SERIALIZABLE) before any write. */
  check(msg: unknown): void {
    encodeWire(msg);
  },

  /** The cast as its queue item, encoded: checked (as `check`) and ready for `cast`, encoded once. */
  encode(msg: unknown): Buffer {
    return DurableQueue.encodeItem({ kind: 'cast', msg });
  },

  cast(tx: Transaction, target: ServerKeys, encoded: Buffer): void {
    DurableQueue.pushEncoded(tx, target, [encoded]);
  },
};
