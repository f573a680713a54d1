import type { TupleItem } from 'fdb-tuple';

/**
 * The storage contract, modelled on FoundationDB: serializable read-write transactions over ordered
 * byte keys with read-your-writes. Every backend (memory, sqlite, fdb) implements it the same way and
 * one conformance suite (test/backend/) holds them to it.
 *
 * Keys passed to a transaction are raw bytes *relative to the tenant*: the tenant adds its prefix.
 * Build them with `pack([...])` from `src/backend/keys.ts` (FoundationDB's tuple encoding), so they
 * sort the way the tuples do.
 */
export type { TupleItem };
export type KeyTuple = TupleItem[];

export interface KeyValue {
  key: Buffer;
  value: Buffer;
}

export interface RangeOptions {
  /** At most this many pairs (0 or absent: no limit). */
  limit?: number;
  /** Return pairs from the end of the range backwards. */
  reverse?: boolean;
}

/** A 10-byte FoundationDB-style versionstamp: 8-byte big-endian commit version + 2-byte batch order. */
export type Versionstamp = Buffer;

export interface Watch {
  /** Resolves `true` once a commit changes the watched key, `false` if cancelled first. */
  readonly changed: Promise<boolean>;
  /**
   * Set before `changed` resolves `true` by backends that had the key's new value at hand (they read
   * it to compare with the baseline, or the commit's notice carried it): the value a commit left
   * (undefined: the key was cleared), committed, though perhaps changed again since. Unset: read it.
   */
  readonly seen?: { readonly value: Buffer | undefined };
  cancel(): void;
}

export interface ReadTransaction {
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Pairs with start <= key < end, in key order (or reversed). */
  getRange(start: Buffer, end: Buffer, options?: RangeOptions): Promise<KeyValue[]>;
}

export interface Transaction extends ReadTransaction {
  set(key: Buffer, value: Buffer): void;
  clear(key: Buffer): void;
  /** Clears start <= key < end. */
  clearRange(start: Buffer, end: Buffer): void;
  /** Atomic add of a little-endian signed 64-bit integer; a missing key counts as 0. */
  add(key: Buffer, delta: number | bigint): void;
  /**
   * Writes `value` under a key built from `tuple`, which must hold exactly one `unboundVersionstamp()`;
   * it is replaced by this transaction's versionstamp at commit, so keys sort in commit order.
   * Items with no explicit user version get 0, 1, 2… in call order within the transaction.
   * (Portable code does not read such a key back in the same transaction: FoundationDB cannot.)
   */
  setVersionstampedKey(tuple: KeyTuple, value: Buffer): void;
  /** Writes `prefix + versionstamp(10 bytes) + suffix` under `key` at commit. */
  setVersionstampedValue(key: Buffer, prefix?: Buffer, suffix?: Buffer): void;
  /** Resolves with this transaction's committed versionstamp, after it commits. */
  getVersionstamp(): Promise<Versionstamp>;
  /**
   * A watch on `key` that starts when this transaction commits and fires once a commit leaves the
   * key's value different from the value this transaction sees when `watch` is called (writing the
   * same value again does not fire it). If the transaction fails, the watch resolves `false`.
   */
  watch(key: Buffer, options?: WatchOptions): Watch;
}

export interface WatchOptions {
  /**
   * The watcher can wait: the watch may fire up to one poll interval (SQLite: `WATCH_POLL_MS`, 50 ms)
   * after the commit that changed the key instead of at once. In exchange, a process whose only
   * watches are lazy is not woken by every commit of other processes: SQLite stops listening to their
   * commit notices and only polls. For a standby that waits out another process's lease, which changes
   * about once a second while that process commits thousands of times. Backends that learn each
   * commit's keys anyway (PostgreSQL, FoundationDB, memory) fire it as promptly as any watch. Default
   * false.
   */
  lazy?: boolean;
}

export interface TransactOptions {
  /** Milliseconds the body may run before the transaction fails with TRANSACTION_TIMED_OUT (5000). */
  timeoutMs?: number;
  /** How many times a retryable conflict re-runs the body before giving up (100). */
  maxRetries?: number;
  /**
   * The commit need not be on disk when `transact` resolves, because nothing is acknowledged on its
   * strength until a later, durable commit to the same store, which makes it durable too (a call's
   * push: its caller learns only from the reply; the handling of casts: a power cut that takes it back
   * leaves the casts queued, to be handled again). Engines that flush every commit (SQLite at
   * `synchronous: 'full'`) leave the flush to that later commit, or flush behind it off the event loop
   * soon after, as PostgreSQL's asynchronous commit does; the others ignore it. Default false.
   *
   * A function is asked once the body has returned, just before the commit (only for the attempt that
   * commits): for a transaction that learns only from what it read whether it acknowledges anything (a
   * consumer that reads its batch in the transaction that handles it). A throwing function counts as
   * false. Engines that must choose before the body runs (SQLite: its synchronous setting cannot change
   * inside a transaction) take a function as false, and flush.
   */
  deferFlush?: boolean | (() => boolean);
}

export interface Tenant {
  readonly path: readonly string[];
  readonly backend: Backend;
  /**
   * Runs `fn` in a serializable transaction and commits it. `fn` may be run again after a retryable
   * conflict, so it must not have side effects; if it throws, nothing is committed and the error is
   * rethrown.
   */
  transact<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactOptions): Promise<T>;
  /** A consistent snapshot read outside any read-write transaction (takes no locks). */
  read<T>(fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T>;
  /** A watch that starts now (as `transact(tx => tx.watch(key, options))`). */
  watch(key: Buffer, options?: WatchOptions): Promise<Watch>;
}

export type BackendKind = 'memory' | 'sqlite' | 'postgres' | 'fdb';

export interface Backend {
  readonly kind: BackendKind;
  /** Opens (creating if needed) the tenant at `path`: a FoundationDB directory or a key prefix. */
  openTenant(path: readonly string[]): Promise<Tenant>;
  /** Deletes every key of the tenant at `path` (and of tenants below it). */
  removeTenant(path: readonly string[]): Promise<void>;
  /** Releases files, watches and timers. Later calls reject with BACKEND_CLOSED. */
  close(): Promise<void>;
}

/** The same limits on every backend (FoundationDB's). */
export const LIMITS = Object.freeze({
  valueBytes: 100_000,
  keyBytes: 10_000,
  transactionBytes: 10_000_000,
  transactionMs: 5_000,
});
