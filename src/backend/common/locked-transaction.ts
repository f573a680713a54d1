import { BackendError } from '../../errors';
import type {
  KeyTuple,
  KeyValue,
  RangeOptions,
  Transaction,
  Versionstamp,
  Watch,
  WatchOptions,
} from '../types';
import { checkKey, checkValue, WriteBudget } from './limits';
import { addInt64LE } from './int64';
import type { SyncStore } from './sync-store';
import { makeVersionstamp, packVersionstampedTuple } from './versionstamp';
import { PendingAdds } from './pending-adds';
import type { WatchHub } from './watch-hub';
import { assertUnfinished, isLazyWatch, withPrefix } from './transaction-guards';

const EMPTY = Buffer.alloc(0);

/**
 * A transaction that runs while its engine holds the write lock, so it applies each write straight to
 * the store (the engine rolls back on failure). Its commit version is allocated from the engine the
 * first time it is needed (a versionstamped write or getVersionstamp), inside the transaction, so
 * transactions that never use a versionstamp do not pay for one.
 */
export class LockedTransaction implements Transaction {
  /** Keys (hex) and ranges written, kept only if a watch existed when the transaction began. */
  private readonly touchedKeys: Set<string> | undefined;
  private readonly touchedRanges: Array<readonly [Buffer, Buffer]> | undefined;
  private readonly budget = new WriteBudget();
  private stampBytes: Versionstamp | undefined;
  private watches:
    | Array<{ arm: (v: Buffer | undefined) => void; abort: () => void; baseline: Buffer | undefined }>
    | undefined;
  private stampWaiters:
    Array<{ resolve: (v: Versionstamp) => void; reject: (e: unknown) => void }> | undefined;
  private nextUserVersion = 0;
  /** Adds held back and merged per key until something could see them (stores with `add` only). */
  private pendingAdds: PendingAdds | undefined;
  private finished = false;
  private dirty = false;
  /** The last write, if it was a `set` of a small value: a watch's baseline there needs no read. */
  private lastSetKey: Buffer | undefined;
  private lastSetValue: Buffer | undefined;

  constructor(
    private readonly store: SyncStore,
    private readonly prefix: Buffer,
    private readonly allocateVersion: () => bigint,
    private readonly hub: WatchHub,
    /** An earlier transaction of the same group commit will arm watches when this one commits. */
    watchesPending = false,
  ) {
    // Watches are armed only by a committing transaction, and this one holds the write lock, so no
    // watch can appear before it commits (but those of its group): with none, nobody needs its writes.
    if (hub.size > 0 || watchesPending) {
      this.touchedKeys = new Set();
      this.touchedRanges = [];
    }
  }

  /** True once this transaction has written anything (a set, clear, clearRange or add). */
  get wrote(): boolean {
    return this.dirty;
  }

  /** True once this transaction holds watches that `committed()` will arm. */
  get armsWatches(): boolean {
    return this.watches !== undefined && this.watches.length > 0;
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.live();
    checkKey(key);
    const full = this.full(key);
    this.applyAdds(full);
    return this.store.get(full);
  }

  async getRange(start: Buffer, end: Buffer, options: RangeOptions = {}): Promise<KeyValue[]> {
    this.live();
    checkKey(start);
    checkKey(end);
    this.applyAdds();
    const rows = this.store.range(
      this.full(start),
      this.full(end),
      options.limit ?? 0,
      options.reverse ?? false,
    );
    const n = this.prefix.length;
    if (n > 0) for (const row of rows) row.key = row.key.subarray(n);
    return rows;
  }

  set(key: Buffer, value: Buffer): void {
    this.live();
    checkKey(key);
    checkValue(value);
    this.budget.spend(key.length + value.length);
    this.write(this.full(key), value);
  }

  clear(key: Buffer): void {
    this.live();
    checkKey(key);
    this.budget.spend(key.length);
    const full = this.full(key);
    this.dirty = true;
    this.applyAdds(full);
    this.lastSetKey = undefined;
    this.store.delete(full);
    this.touchedKeys?.add(full.toString('hex'));
  }

  clearRange(start: Buffer, end: Buffer): void {
    this.live();
    checkKey(start);
    checkKey(end);
    this.budget.spend(start.length + end.length);
    if (Buffer.compare(start, end) >= 0) return;
    const range = [this.full(start), this.full(end)] as const;
    this.dirty = true;
    this.applyAdds();
    this.lastSetKey = undefined;
    this.store.deleteRange(range[0], range[1]);
    this.touchedRanges?.push(range);
  }

  add(key: Buffer, delta: number | bigint): void {
    this.live();
    checkKey(key);
    if (typeof delta === 'number' ? !Number.isSafeInteger(delta) : typeof delta !== 'bigint')
      throw new BackendError('BAD_ARGUMENT', `add() takes an integer delta (got ${String(delta)})`);
    this.budget.spend(key.length + 8);
    const full = this.full(key);
    this.dirty = true;
    this.lastSetKey = undefined;
    if (!this.store.add) {
      this.store.set(full, addInt64LE(this.store.get(full), delta));
      this.touchedKeys?.add(full.toString('hex'));
      return;
    }
    const hex = full.toString('hex');
    (this.pendingAdds ??= new PendingAdds()).add(hex, full, BigInt.asIntN(64, BigInt(delta)));
    this.touchedKeys?.add(hex);
  }

  setVersionstampedKey(tuple: KeyTuple, value: Buffer): void {
    this.live();
    checkValue(value);
    const { data, stampPos } = packVersionstampedTuple(tuple, () => this.nextUserVersion++);
    this.stamp().copy(data, stampPos);
    checkKey(data);
    this.budget.spend(data.length + value.length);
    this.write(this.full(data), value, false);
  }

  setVersionstampedValue(key: Buffer, prefix: Buffer = EMPTY, suffix: Buffer = EMPTY): void {
    this.live();
    this.set(key, Buffer.concat([prefix, this.stamp(), suffix]));
  }

  getVersionstamp(): Promise<Versionstamp> {
    this.live();
    const stamp = this.stamp();
    return new Promise((resolve, reject) =>
      (this.stampWaiters ??= []).push({ resolve: () => resolve(stamp), reject }),
    );
  }

  watch(key: Buffer, options?: WatchOptions): Watch {
    this.live();
    checkKey(key);
    const lazy = isLazyWatch(options);
    const full = this.full(key);
    this.applyAdds(full);
    const { watch, arm, abort } = this.hub.pending(full, lazy);
    // As FoundationDB: the watch compares against the value this transaction sees now (read inside the
    // transaction, so a commit by another process right after ours cannot slip past it) — or the
    // value it has just set there (a caller's pending marker), which that read would return.
    const baseline = this.lastSetKey?.equals(full) ? this.lastSetValue : this.store.get(full);
    (this.watches ??= []).push({ arm, abort, baseline });
    return watch;
  }

  /**
   * Writes the adds held back (PendingAdds) — all of them, or only if one is pending for `full`, which
   * is about to be read or written. A versionstamped key needs no check: it holds this commit's own
   * versionstamp, which no key the body could name before the commit does.
   */
  applyAdds(full?: Buffer): void {
    const pending = this.pendingAdds;
    if (!pending || pending.size === 0) return;
    if (full === undefined || pending.has(full)) pending.apply(this.store);
  }

  /** Stops every later operation: called when the body returns, throws or times out. */
  finish(): void {
    this.finished = true;
  }

  /** After the engine committed: arm watches, resolve versionstamps, wake local watchers. */
  committed(): void {
    if (this.watches) for (const w of this.watches) w.arm(w.baseline);
    if (this.stampWaiters) for (const w of this.stampWaiters) w.resolve(this.stampBytes!);
    if (this.touchedKeys) this.hub.notify(this.touchedKeys, this.touchedRanges!, (k) => this.store.get(k));
  }

  aborted(reason: unknown): void {
    if (this.watches) for (const w of this.watches) w.abort();
    if (this.stampWaiters) for (const w of this.stampWaiters) w.reject(reason);
  }

  private stamp(): Versionstamp {
    return (this.stampBytes ??= makeVersionstamp(this.allocateVersion()));
  }

  /** `pendingAddsToo`: whether an add may be pending for this key (not for a versionstamped one). */
  private write(full: Buffer, value: Buffer, pendingAddsToo = true): void {
    this.dirty = true;
    if (pendingAddsToo) this.applyAdds(full);
    this.store.set(full, value);
    // A copy, as the store keeps (the caller may change its buffer); only of small values (markers).
    this.lastSetKey = value.length <= 64 ? full : undefined;
    this.lastSetValue = value.length <= 64 ? Buffer.from(value) : undefined;
    this.touchedKeys?.add(full.toString('hex'));
  }

  private full(key: Buffer): Buffer {
    return withPrefix(this.prefix, key);
  }

  private live(): void {
    assertUnfinished(this.finished);
  }
}
