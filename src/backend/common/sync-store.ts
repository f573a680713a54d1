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
}
