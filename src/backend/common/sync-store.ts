import type { KeyValue } from '../types';

/**
 * The synchronous key-value operations a locking engine needs, on full (tenant-prefixed) keys.
 * Memory and SQLite implement it; a LockedTransaction runs on top while holding the write lock.
 */
export interface SyncStore {
  get(key: Buffer): Buffer | undefined;
  range(start: Buffer, end: Buffer, limit: number, reverse: boolean): KeyValue[];
  set(key: Buffer, value: Buffer): void;
  delete(key: Buffer): void;
  deleteRange(start: Buffer, end: Buffer): void;
  /**
   * Optional: the atomic little-endian int64 add done by the store itself (SQLite: one statement
   * instead of a read and a write). Without it the transaction reads, adds and writes.
   */
  add?(key: Buffer, delta: bigint): void;
}
