import { Encoder } from 'cbor-x';

/**
 * Encoding of what the runtime itself stores: queue items, replies, lock records, dead letters.
 * CBOR (as the state codec) so messages may carry Map, Set, Date, BigInt and binary data.
 */
const encoder = new Encoder({ useRecords: false, structuredClone: true });

export const encodeWire = (value: unknown): Buffer => encoder.encode(value);
export const decodeWire = <T>(bytes: Buffer): T => encoder.decode(bytes) as T;

/** A queued message: a cast, or a call with the id of its waiting caller. */
export type QueueItem = { kind: 'cast'; msg: unknown } | { kind: 'call'; msg: unknown; from: FromId };

/** Identifies one waiting caller: [the time (ms since the epoch) it gives up, random id]; keys sort by deadline for garbage collection. */
export type FromId = [number, string];

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
