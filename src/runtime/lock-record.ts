import type { ReadTransaction, Transaction } from '../backend/types';
import type { ServerKeys } from './server-keys';
import { decodeWire, encodeWire, type LockRecord } from './wire';

/** The lock a `lock(state)` return takes: who holds it and until when its lease runs. */
export const LockRecords = {
  async read(tx: ReadTransaction, keys: ServerKeys): Promise<LockRecord | undefined> {
    const raw = await tx.get(keys.lock);
    return raw && decodeWire<LockRecord>(raw);
  },
  take(tx: Transaction, keys: ServerKeys, owner: string, leaseMs: number): void {
    tx.set(keys.lock, encodeWire({ owner, leaseUntil: Date.now() + leaseMs } satisfies LockRecord));
  },
  /** Extends the lease if `owner` still holds the lock; false when it has lost it. */
  async renew(tx: Transaction, keys: ServerKeys, owner: string, leaseMs: number): Promise<boolean> {
    const current = await LockRecords.read(tx, keys);
    if (current?.owner !== owner) return false;
    LockRecords.take(tx, keys, owner, leaseMs);
    return true;
  },
  async release(tx: Transaction, keys: ServerKeys, owner: string): Promise<boolean> {
    const current = await LockRecords.read(tx, keys);
    if (current?.owner !== owner) return false;
    tx.clear(keys.lock);
    return true;
  },
};
