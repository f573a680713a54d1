import type { Database, Transaction as NativeTransaction } from 'foundationdb';
import { BackendError } from '../../errors';
import { encodeInt64LE } from '../common/int64';
import { checkKey, checkValue, checkValueSize, WriteBudget } from '../common/limits';
import { packVersionstampedTuple } from '../common/versionstamp';
import { isLazyWatch } from '../common/transaction-guards';
import type { KeyTuple, KeyValue, RangeOptions, Transaction, Versionstamp, WatchOptions } from '../types';
import { LIMITS } from '../types';
import { FdbWatch } from './fdb-watch';
import type { FdbModule } from './load-fdb';

const EMPTY = Buffer.alloc(0);

/**
 * One attempt of a contract transaction on a native FoundationDB transaction, with keys relative to the
 * tenant's directory prefix and the contract's limits checked before FoundationDB sees anything, so
 * the errors are the same as on the other backends.
 */
export class FdbTransaction implements Transaction {
  private readonly budget = new WriteBudget();
  private readonly watches: FdbWatch[] = [];
  private nextUserVersion = 0;
  private finished = false;
  /** A mutation reached FoundationDB (an empty clearRange does not: it gives no commit version). */
  private wrote = false;
  private wantsVersionstamp = false;

  constructor(
    private readonly fdb: FdbModule,
    private readonly db: Database,
    private readonly tn: NativeTransaction,
    private readonly prefix: Buffer,
    private readonly liveWatches: Set<FdbWatch>,
    /** Snapshot reads (no read conflicts): for `tenant.read`. */
    snapshot = false,
  ) {
    this.reader = snapshot ? tn.snapshot() : tn;
  }

  private readonly reader: NativeTransaction;

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.live();
    checkKey(key);
    return (await this.reader.get(this.full(key))) ?? undefined;
  }

  async getRange(start: Buffer, end: Buffer, options: RangeOptions = {}): Promise<KeyValue[]> {
    this.live();
    checkKey(start);
    checkKey(end);
    if (Buffer.compare(start, end) >= 0) return [];
    const limit = options.limit && options.limit > 0 ? options.limit : undefined;
    const rows = await this.reader.getRangeAll(this.full(start), this.full(end), {
      limit,
      reverse: !!options.reverse,
    });
    const n = this.prefix.length;
    return rows.map(([key, value]) => ({ key: key.subarray(n), value }));
  }

  set(key: Buffer, value: Buffer): void {
    this.live();
    checkKey(key);
    this.checkStoredKey(key.length);
    checkValue(value);
    this.spend(key.length + value.length);
    this.tn.set(this.full(key), value);
    this.wrote = true;
  }

  clear(key: Buffer): void {
    this.live();
    checkKey(key);
    this.spend(key.length);
    this.tn.clear(this.full(key));
    this.wrote = true;
  }

  clearRange(start: Buffer, end: Buffer): void {
    this.live();
    checkKey(start);
    checkKey(end);
    this.spend(start.length + end.length);
    if (Buffer.compare(start, end) >= 0) return;
    this.tn.clearRange(this.full(start), this.full(end));
    this.wrote = true;
  }

  add(key: Buffer, delta: number | bigint): void {
    this.live();
    checkKey(key);
    if (typeof delta === 'number' ? !Number.isSafeInteger(delta) : typeof delta !== 'bigint')
      throw new BackendError('BAD_ARGUMENT', `add() takes an integer delta (got ${String(delta)})`);
    this.checkStoredKey(key.length);
    this.spend(key.length + 8);
    this.tn.atomicOpNative(this.fdb.MutationType.Add, this.full(key), encodeInt64LE(BigInt(delta)));
    this.wrote = true;
  }

  setVersionstampedKey(tuple: KeyTuple, value: Buffer): void {
    this.live();
    checkValue(value);
    const { data, stampPos } = packVersionstampedTuple(tuple, () => this.nextUserVersion++);
    checkKey(data);
    this.checkStoredKey(data.length);
    this.spend(data.length + value.length);
    // FoundationDB's format: the key with a placeholder, then the placeholder's offset (4 bytes LE).
    const p = this.prefix.length;
    const key = Buffer.alloc(p + data.length + 4);
    this.prefix.copy(key, 0);
    data.copy(key, p);
    key.writeUInt32LE(p + stampPos, p + data.length);
    this.tn.atomicOpNative(this.fdb.MutationType.SetVersionstampedKey, key, value);
    this.wrote = true;
  }

  setVersionstampedValue(key: Buffer, prefix: Buffer = EMPTY, suffix: Buffer = EMPTY): void {
    this.live();
    checkKey(key);
    this.checkStoredKey(key.length);
    if (!Buffer.isBuffer(prefix) || !Buffer.isBuffer(suffix))
      throw new BackendError('BAD_ARGUMENT', 'setVersionstampedValue takes Buffers for prefix and suffix');
    const length = prefix.length + 10 + suffix.length;
    checkValueSize(length);
    this.spend(key.length + length);
    const value = Buffer.alloc(length + 4);
    prefix.copy(value, 0);
    suffix.copy(value, prefix.length + 10);
    value.writeUInt32LE(prefix.length, length);
    this.tn.atomicOpNative(this.fdb.MutationType.SetVersionstampedValue, this.full(key), value);
    this.wrote = true;
  }

  getVersionstamp(): Promise<Versionstamp> {
    this.live();
    this.wantsVersionstamp = true;
    return this.tn.getVersionstamp().promise;
  }

  watch(key: Buffer, options?: WatchOptions): FdbWatch {
    this.live();
    checkKey(key);
    isLazyWatch(options); // checked; the cluster tells each watch its own change
    const full = this.full(key);
    // The value this transaction sees now (snapshot: no conflict), which the watch compares against.
    const baseline = this.tn
      .snapshot()
      .get(full)
      .then((v) => v ?? undefined);
    const w = new FdbWatch(this.db, full, baseline, this.tn.watch(full), this.liveWatches);
    this.watches.push(w);
    return w;
  }

  /** The body has returned: no more operations; make sure a versionstamp has a commit to come from. */
  finish(): void {
    this.finished = true;
    // A read-only transaction has no commit version; a write conflict range gives it one.
    if (this.wantsVersionstamp && !this.wrote) this.tn.addWriteConflictKey(this.prefix);
  }

  committed(): void {
    for (const w of this.watches) w.start();
  }

  aborted(): void {
    this.finished = true;
    for (const w of this.watches) w.abort();
  }

  private spend(bytes: number): void {
    this.budget.spend(bytes);
  }

  /**
   * FoundationDB's key limit applies to the whole key, the tenant's directory prefix included; past it
   * a write fails only at commit, with key_too_large (2102). Say so at the call, as the other backends
   * do. (Clears need no check: FoundationDB ignores a clear of a key too long to exist.)
   */
  private checkStoredKey(length: number): void {
    if (this.prefix.length + length > LIMITS.keyBytes)
      throw new BackendError(
        'KEY_TOO_LARGE',
        `key of ${length} bytes, with the tenant's ${this.prefix.length}-byte FoundationDB directory prefix, exceeds the ${LIMITS.keyBytes}-byte limit`,
      );
  }

  private full(key: Buffer): Buffer {
    return Buffer.concat([this.prefix, key], this.prefix.length + key.length);
  }

  private live(): void {
    if (this.finished)
      throw new BackendError(
        'TRANSACTION_FINISHED',
        'this transaction has already committed, failed or timed out; do its work inside the transact() body',
      );
  }
}
