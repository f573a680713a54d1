import { cborSerializer } from '../codec/serializer';
import type { QueueItemExtras } from '../telemetry/queue-extras';

/**
 * Encoding of what the runtime itself stores: queue items, replies, lock records, dead letters.
 * The state codec's serializer (one CBOR configuration), with its checks: a message or reply that
 * would not come back as it was (a function, a symbol, a class instance, an own `__proto__`, a lone
 * surrogate) is refused with NOT_SERIALIZABLE, naming the part, instead of being changed silently.
 */
export const encodeWire = (value: unknown): Buffer => cborSerializer.encode(value);
export const decodeWire = <T>(bytes: Buffer): T => cborSerializer.decode(bytes) as T;

/**
 * A queued message: a cast, a call with the id of its waiting caller, or an info (the idle timeout's
 * 'timeout', which a timer puts in the queue).
 */
export type QueueItem = (
  | { kind: 'cast'; msg: unknown }
  | { kind: 'info'; msg: unknown }
  | { kind: 'call'; msg: unknown; from: FromId }
) &
  Partial<QueueItemExtras>; // ops: enqueue time, trace context (optional: older items lack them)

/**
 * Identifies one waiting caller: [the time (ms since the epoch) it gives up, random id]; keys sort by
 * deadline for garbage collection. A call with an idempotency key carries it third: the consumer
 * stores the reply under that key too (idempotency.ts).
 */
export type FromId = [deadline: number, id: string, idempotencyKey?: string];

/** What a waiting caller finds under its from-key. */
export type ReplyRecord = { ok: true; value: unknown } | { ok: false; code: string; message: string };

export interface LockRecord {
  owner: string;
  leaseUntil: number;
}

export interface DeadLetter {
  msg: unknown;
  error: string;
  attempts: number;
}
