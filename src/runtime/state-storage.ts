import type { ReadTransaction, Transaction } from '../backend/types';

/** A server's stored state with the version (a versionstamp) of the commit that wrote it. */
export interface StoredState {
  state: unknown;
  version: Buffer;
  /** The state was stored by an older version of the class and upgraded as read (write it back). */
  upgraded?: boolean;
}

/**
 * How the runtime reads and writes a server's state. The state codec's `StateStore` implements it:
 * one key per property / id-list item, diff writes, a versionstamped version key.
 */
export interface StateStorage {
  readVersion(tx: ReadTransaction): Promise<Buffer | undefined>;
  read(tx: ReadTransaction): Promise<StoredState | undefined>;
  /** Throws (VERSION_AHEAD) when the stored state belongs to a newer version of the class. */
  assertCurrent?(tx: ReadTransaction): Promise<void>;
  /** Writes `next`, given the state as last read or written (`previous`), and stamps a new version. */
  write(tx: Transaction, previous: unknown, next: unknown): void;
}
