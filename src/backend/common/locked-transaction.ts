import { BackendError } from '../../errors';
import type { KeyTuple, KeyValue, RangeOptions, Transaction, Versionstamp, Watch } from '../types';
import { checkKey, checkValue, WriteBudget } from './limits';
import { addInt64LE } from './int64';
import type { SyncStore } from './sync-store';
import { makeVersionstamp, packVersionstampedTuple } from './versionstamp';
import type { WatchHub } from './watch-hub';

/**
 * A transaction that runs while its engine holds the write lock, so it applies each write straight to
 * the store (the engine rolls back on failure) and knows its commit version from the start.
 */
export class LockedTransaction implements Transaction {
  readonly touchedKeys = new Set<string>();
  readonly touchedRanges: Array<readonly [Buffer, Buffer]> = [];
  private readonly budget = new WriteBudget();
  private readonly stamp: Versionstamp;
  private readonly watches: Array<{ key: Buffer; arm: (v: Buffer | undefined) => void; abort: () => void }> = [];
  private readonly stampWaiters: Array<{ resolve: (v: Versionstamp) => void; reject: (e: unknown) => void }> = [];
  private nextUserVersion = 0;
  private finished = false;

  constructor(
    private readonly store: SyncStore,
    private readonly prefix: Buffer,
    commitVersion: bigint,
    private readonly hub: WatchHub,
  ) {
    this.stamp = makeVersionstamp(commitVersion);
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.live();
    checkKey(key);
    return this.store.get(this.full(key));
  }

  async getRange(start: Buffer, end: Buffer, options: RangeOptions = {}): Promise<KeyValue[]> {
    this.live();
    checkKey(start);
    checkKey(end);
    const n = this.prefix.length;
    return this.store
      .range(this.full(start), this.full(end), options.limit ?? 0, options.reverse ?? false)
      .map(({ key, value }) => ({ key: key.subarray(n), value }));
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
    this.store.delete(full);
    this.touchedKeys.add(full.toString('hex'));
  }

  clearRange(start: Buffer, end: Buffer): void {
    this.live();
    checkKey(start);
    checkKey(end);
    this.budget.spend(start.length + end.length);
    if (Buffer.compare(start, end) >= 0) return;
    const range = [this.full(start), this.full(end)] as const;
    this.store.deleteRange(range[0], range[1]);
    this.touchedRanges.push(range);
  }

  add(key: Buffer, delta: number | bigint): void {
    this.live();
    checkKey(key);
    if (typeof delta === 'number' && !Number.isSafeInteger(delta))
      throw new BackendError('BAD_ARGUMENT', `add() takes an integer delta (got ${delta})`);
    this.budget.spend(key.length + 8);
    const full = this.full(key);
    this.write(full, addInt64LE(this.store.get(full), delta));
  }

  setVersionstampedKey(tuple: KeyTuple, value: Buffer): void {
    this.live();
    checkValue(value);
    const { data, stampPos } = packVersionstampedTuple(tuple, () => this.nextUserVersion++);
    this.stamp.copy(data, stampPos);
    checkKey(data);
    this.budget.spend(data.length + value.length);
    this.write(this.full(data), value);
  }

  setVersionstampedValue(key: Buffer, prefix: Buffer = Buffer.alloc(0), suffix: Buffer = Buffer.alloc(0)): void {
    this.set(key, Buffer.concat([prefix, this.stamp, suffix]));
  }

  getVersionstamp(): Promise<Versionstamp> {
    return new Promise((resolve, reject) => this.stampWaiters.push({ resolve, reject }));
  }

  watch(key: Buffer): Watch {
    this.live();
    checkKey(key);
    const full = this.full(key);
    const { watch, arm, abort } = this.hub.pending(full);
    this.watches.push({ key: full, arm, abort });
    return watch;
  }

  /** Stops every later operation: called when the body returns, throws or times out. */
  finish(): void {
    this.finished = true;
  }

  /** After the engine committed: arm watches, resolve versionstamps, wake local watchers. */
  committed(): void {
    for (const w of this.watches) w.arm(this.store.get(w.key));
    for (const w of this.stampWaiters) w.resolve(this.stamp);
    this.hub.notify(this.touchedKeys, this.touchedRanges, (k) => this.store.get(k));
  }

  aborted(reason: unknown): void {
    for (const w of this.watches) w.abort();
    for (const w of this.stampWaiters) w.reject(reason);
  }

  private write(full: Buffer, value: Buffer): void {
    this.store.set(full, value);
    this.touchedKeys.add(full.toString('hex'));
  }

  private full(key: Buffer): Buffer {
    return this.prefix.length === 0 ? key : Buffer.concat([this.prefix, key]);
  }

  private live(): void {
    if (this.finished)
      throw new BackendError(
        'TRANSACTION_FINISHED',
        'this transaction has already committed, failed or timed out; do its work inside the transact() body',
      );
  }
}
