import type { ReservedSql } from 'postgres';
import { BackendError } from '../../errors';
import { checkKey, checkValue, checkValueSize, WriteBudget } from '../common/limits';
import { packVersionstampedTuple } from '../common/versionstamp';
import type { WatchHub, WatchSync } from '../common/watch-hub';
import type {
  KeyTuple,
  KeyValue,
  RangeOptions,
  Transaction,
  Versionstamp,
  Watch,
  WatchOptions,
} from '../types';
import { LIMITS } from '../types';
import { defersFlush } from '../common/defer-flush';
import { CommitOutcomeUnknown, isConnectionLoss, sqlState } from './postgres-errors';
import type { Statements } from './schema';
import { TouchedKeys } from './notify-payload';
import { commitTail } from './commit-batch';
import { mergeWrites } from './write-merge';
import { assertUnfinished, isLazyWatch, withPrefix } from '../common/transaction-guards';
import type { Stmt } from './write-buffer';
import { StatementPipeline } from './statement-pipeline';
import type { PreparedStatements } from './prepared-statements';
import { GetBatch } from './get-batch';

const EMPTY = Buffer.alloc(0);
/** A baseline no stored value equals (longer than any value): the watch fires at its first recheck. */
let unknownBaseline: Buffer | undefined;

type Row = Record<string, unknown>;

/** What the transaction needs from its backend. */
export interface TxHost {
  readonly st: Statements;
  readonly hub: WatchHub;
  readonly channel: string;
  /** The LISTEN side's position: how many notifications it has handled so far. */
  notifications(): number;
  /** Whether a notification handled after position `since` may concern `key` (a full key). */
  changedSince(key: Buffer, since: number, own?: number): boolean;
  /** Watches were armed with a baseline older than some notification: look at their keys again. */
  recheck(keys: Buffer[]): void;
  /** A token for the NOTIFY of a commit that arms watches, and the sync of those watches (see WatchSync). */
  watchToken(): string;
  syncOf(token: string): WatchSync & { heardAt?: number };
  /** Errors of reads, as the contract's (thrown to the body). */
  translate(err: unknown): unknown;
  readonly prepared: PreparedStatements;
}

interface PendingWatch {
  key: Buffer;
  arm: (v: Buffer | undefined, sync?: WatchSync) => void;
  abort: () => void;
  /** Its value as this transaction commits it (read in the commit batch); unset if that reply was lost. */
  baseline?: { value: Buffer | undefined };
}

/**
 * One attempt of a contract transaction on one reserved connection, in PostgreSQL's SERIALIZABLE
 * isolation. Writes are buffered and go out in order, pipelined, either with the next read (so the
 * server answers reads with them applied: read-your-writes) or with COMMIT: a transaction that only
 * writes costs one round trip, BEGIN and COMMIT included; each read costs one more.
 *
 * Adds and versionstamps need the commit lock (see schema.ts): its holders commit one at a time, which
 * orders versionstamps by commit. It is taken in the commit batch — `LOCK`, the transaction id and
 * versionstamp, the writes, the watches' values, NOTIFY and `COMMIT` in one simple-protocol query
 * message, run only once fully received (see commitLocked) — so it is held only while the server runs
 * that batch, never while the body runs or the client is away (see WriteBuffer).
 * A transaction that read nothing before has its snapshot taken after the lock, and sees the previous
 * holder's commit: concurrent blind pushers to one queue wait for each other instead of conflicting.
 */
export class PostgresTransaction extends StatementPipeline implements Transaction {
  private readonly budget = new WriteBudget();
  /** Gets asked for together, sent as one statement (flushed before any write is buffered). */
  private readonly gets = new GetBatch(this.host.st, (stmt) => this.query(stmt, false));
  private stampWanted = false;
  private wrote = false;
  private finished = false;
  /** The watcher's position when this attempt started, before its snapshot (see `committed`). */
  private since = 0;
  /** The keys written, for the NOTIFY. */
  private readonly touched = new TouchedKeys();
  /** The token of this commit's NOTIFY, when it arms watches. */
  private token: string | undefined;
  private nextUserVersion = 0;
  private watches: PendingWatch[] | undefined;
  /**
   * Hex full key → the value this transaction last set (undefined: cleared), for keys whose value as
   * committed is known without reading it (set or clear as their last write; not add, not stamped).
   */
  private written: Map<string, { full: Buffer; value: Buffer | undefined }> | undefined;
  private stampWaiters:
    Array<{ resolve: (v: Versionstamp) => void; reject: (e: unknown) => void }> | undefined;
  private stamp: Buffer | undefined;
  /** The transaction id and the server's incarnation, once the commit's reply told them. */
  private xid: string | undefined;
  private boot: string | undefined;

  constructor(
    conn: ReservedSql,
    host: TxHost,
    private readonly prefix: Buffer,
    readOnly: boolean,
    /** Extra statements after BEGIN (e.g. a longer idle_in_transaction_session_timeout). */
    beginExtra: readonly string[] = [],
  ) {
    super(conn, host, readOnly, beginExtra);
  }

  /** TransactOptions.deferFlush as a function: asked at the commit, whose batch then sets asyncCommit. */
  deferAtCommit: (() => boolean) | undefined;
  async get(key: Buffer): Promise<Buffer | undefined> {
    this.live();
    checkKey(key);
    const full = this.full(key);
    if (!this.buffer.mustLockForKey(full)) return this.gets.get(full);
    this.gets.flush();
    const [row] = await this.query({ text: this.host.st.get, params: [full] }, true);
    return row ? (row.value as Buffer) : undefined;
  }

  async getRange(start: Buffer, end: Buffer, options: RangeOptions = {}): Promise<KeyValue[]> {
    this.live();
    checkKey(start);
    checkKey(end);
    if (Buffer.compare(start, end) >= 0) return [];
    const limit = options.limit && options.limit > 0 ? options.limit : null;
    const [s, e] = [this.full(start), this.full(end)];
    const rows = await this.query(
      { text: options.reverse ? this.host.st.rangeReverse : this.host.st.range, params: [s, e, limit] },
      this.buffer.mustLockForRange(s, e),
    );
    const n = this.prefix.length;
    return rows.map((r) => ({ key: (r.key as Buffer).subarray(n), value: r.value as Buffer }));
  }

  set(key: Buffer, value: Buffer): void {
    this.live();
    this.gets.flush();
    checkKey(key);
    checkValue(value);
    this.budget.spend(key.length + value.length);
    const full = this.full(key);
    const copy = Buffer.from(value);
    this.buffer.key({ text: this.host.st.set, params: [full, copy] }, full, false);
    this.wrote = true;
    this.touched.set(full, copy);
    this.known(full, copy);
  }

  clear(key: Buffer): void {
    this.live();
    this.gets.flush();
    checkKey(key);
    this.budget.spend(key.length);
    const full = this.full(key);
    this.buffer.key({ text: this.host.st.clear, params: [full] }, full, false);
    this.wrote = true;
    this.touched.clear(full);
    this.known(full, undefined);
  }

  clearRange(start: Buffer, end: Buffer): void {
    this.live();
    this.gets.flush();
    checkKey(start);
    checkKey(end);
    this.budget.spend(start.length + end.length);
    if (Buffer.compare(start, end) >= 0) return;
    const [s, e] = [this.full(start), this.full(end)];
    this.buffer.range({ text: this.host.st.clearRange, params: [s, e] }, s, e);
    this.wrote = true;
    this.touched.all();
    for (const w of this.written?.values() ?? [])
      if (Buffer.compare(w.full, s) >= 0 && Buffer.compare(w.full, e) < 0) w.value = undefined;
  }

  add(key: Buffer, delta: number | bigint): void {
    this.live();
    this.gets.flush();
    checkKey(key);
    if (typeof delta === 'number' ? !Number.isSafeInteger(delta) : typeof delta !== 'bigint')
      throw new BackendError('BAD_ARGUMENT', `add() takes an integer delta (got ${String(delta)})`);
    this.budget.spend(key.length + 8);
    const full = this.full(key);
    const pending = this.buffer.addTo(full);
    if (pending) {
      // Adds wrap at 64 bits, so two in a row are one of their sum.
      pending.params[1] = String(BigInt.asIntN(64, BigInt(pending.params[1] as string) + BigInt(delta)));
      return;
    }
    const delta64 = String(BigInt.asIntN(64, BigInt(delta)));
    const stmt = { text: this.host.st.add, params: [full, delta64, ...this.touched.computed(full)] };
    this.buffer.key(stmt, full, true, true);
    this.wrote = true;
    this.written?.delete(full.toString('hex'));
  }

  setVersionstampedKey(tuple: KeyTuple, value: Buffer): void {
    this.live();
    this.gets.flush();
    checkValue(value);
    const { data, stampPos } = packVersionstampedTuple(tuple, () => this.nextUserVersion++);
    checkKey(data);
    this.budget.spend(data.length + value.length);
    this.stampWanted = this.wrote = true;
    const full = this.full(data);
    const stampedPrefix = full.subarray(0, this.prefix.length + stampPos);
    for (const [hex, w] of this.written ?? [])
      if (w.full.subarray(0, stampedPrefix.length).equals(stampedPrefix)) this.written!.delete(hex);
    // Its key is known only at commit: not listed in NOTIFY (watching such a key is not portable).
    this.buffer.stamped(
      {
        text: this.host.st.setStampedKey,
        params: [full, this.prefix.length + stampPos + 1, Buffer.from(value)],
      },
      stampedPrefix,
    );
  }

  setVersionstampedValue(key: Buffer, prefix: Buffer = EMPTY, suffix: Buffer = EMPTY): void {
    this.live();
    this.gets.flush();
    checkKey(key);
    if (!Buffer.isBuffer(prefix) || !Buffer.isBuffer(suffix))
      throw new BackendError('BAD_ARGUMENT', 'setVersionstampedValue takes Buffers for prefix and suffix');
    const length = prefix.length + 10 + suffix.length;
    checkValueSize(length);
    this.budget.spend(key.length + length);
    this.stampWanted = true;
    const full = this.full(key);
    const stmt = {
      text: this.host.st.setStampedValue,
      params: [full, Buffer.from(prefix), Buffer.from(suffix), ...this.touched.computed(full)],
    };
    this.buffer.key(stmt, full, true);
    this.wrote = true;
    this.written?.delete(full.toString('hex'));
  }

  getVersionstamp(): Promise<Versionstamp> {
    this.live();
    this.stampWanted = true;
    return new Promise((resolve, reject) => (this.stampWaiters ??= []).push({ resolve, reject }));
  }

  /**
   * The watch's baseline is the key's value as this transaction commits it: read in the commit batch
   * (no round trip of its own). A commit of another connection that this transaction's snapshot does
   * not see was made after the snapshot, so after `start`, and its notification is handled after
   * `start` too: `committed` looks at the key again if one may have been handled before the arming.
   */
  watch(key: Buffer, options?: WatchOptions): Watch {
    this.live();
    checkKey(key);
    isLazyWatch(options); // checked; every NOTIFY is heard anyway, so a lazy watch fires as promptly
    const full = this.full(key);
    const { watch, arm, abort } = this.host.hub.pending(full);
    (this.watches ??= []).push({ key: full, arm, abort });
    return watch;
  }

  /**
   * Sends BEGIN at once, before the body runs: the connection was open when the pool handed it over,
   * and nothing can close it before this call (no I/O in between), so from here on its closing is
   * heard (see `onFirstExecute`). Its reply is collected with the next batch, in the same round trip.
   */
  start(): void {
    this.since = this.host.notifications();
    this.started = this.send([], false).all;
  }

  /** Stops every later operation: called when the body returns, throws or times out. */
  finish(): void {
    this.finished = true;
  }

  /**
   * Commits; resolves whether COMMIT was sent (else the connection still needs a ROLLBACK). What is
   * left goes in one round trip: [LOCK], the transaction id (and versionstamp), the writes, the
   * watches' values, NOTIFY and COMMIT. A lost connection before COMMIT went out rejects with the
   * connection error (nothing was committed); after, with CommitOutcomeUnknown.
   */
  async commit(): Promise<boolean> {
    this.finished = true;
    this.gets.flush();
    const wrote = this.wrote || this.buffer.size > 0 || this.stampWanted;
    if (!this.used && !wrote && !this.watches) return false; // nothing read or written: nothing to commit
    // Adds alone need the lock only before the snapshot is taken (so that they see the previous adder's
    // commit instead of conflicting with it); once a read has taken it, the lock would not help them.
    const lock =
      !this.buffer.lockTaken && (this.stampWanted || (this.buffer.locked.length > 0 && !this.snapshotTaken));
    const xidStmt = { text: this.stampWanted ? this.host.st.xidStamp : this.host.st.xid, params: [] };
    const writes = mergeWrites(this.buffer.take(true), this.host.st);
    if (this.touched.any && this.watches) this.token = this.host.watchToken();
    // Before COMMIT: NOTIFY (heard exactly when it commits) and asyncCommit if a deferFlush function says so.
    const notify = this.touched.any
      ? this.touched.notify(this.host.st, this.host.channel, this.token)
      : undefined;
    const async = this.deferAtCommit !== undefined && defersFlush(this.deferAtCommit);
    // A watched key this transaction set or cleared last commits with that value: its baseline needs
    // no read. Such a read would be a SERIALIZABLE read, whose predicate locks (a whole index page)
    // make this transaction the reader in other transactions' read/write conflicts: a caller's push
    // (set marker, watch it, push) then stays a blind write, which never makes a consumer a pivot.
    const toRead: number[] = [];
    (this.watches ?? []).forEach((w, i) => {
      const hex = w.key.toString('hex');
      const known = this.written?.get(hex);
      if (known) w.baseline = { value: known.value };
      else toRead.push(i);
    });
    const watched = toRead.map((i) => this.watches![i].key);
    let settled: Array<PromiseSettledResult<unknown>>;
    if (lock) {
      // One simple-protocol query (see commitLocked); the id's reply is flushed before the writes run.
      const stmts: Stmt[] = [xidStmt, { text: this.host.st.flush, params: [] }, ...writes];
      if (watched.length > 0) stmts.push({ text: this.host.st.watchValues(watched.length), params: watched });
      if (notify) stmts.push(notify);
      if (async) stmts.push({ text: this.host.st.asyncCommit, params: [] });
      settled = await Promise.allSettled(this.commitLocked(stmts, (row) => this.onCommitRow(row, toRead)));
    } else {
      // Pipelined: no commit lock is taken here, so a partly received batch holds none.
      const tail = commitTail(this.host.st, { xid: wrote, writes, watched, notify, async }, xidStmt);
      const { all, mine } = this.batch([...tail.stmts, { text: this.host.st.commit, params: [] }], false);
      settled = await Promise.allSettled(all);
      for (const row of tail.rows(settled.slice(settled.length - mine.length))) this.onCommitRow(row, toRead);
    }
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (!failure) return true;
    // A server error means the transaction was aborted there. A lost connection may have lost only the
    // replies: the server may have run everything up to and including COMMIT.
    if (isConnectionLoss(failure.reason) && wrote)
      throw new CommitOutcomeUnknown(this.xid, this.stamp, failure.reason, this.boot);
    throw sqlState(failure.reason) === '25P02' ? (this.firstError ?? failure.reason) : failure.reason;
  }

  /** A row of the commit's replies: the id (and stamp), or a watched key's value (w: its 1-based index). */
  private onCommitRow(row: Row, toRead: number[] = []): void {
    if (typeof row.xid === 'string') {
      this.xid = row.xid;
      this.boot = row.boot as string | undefined;
      if (this.stampWanted) this.stamp = row.stamp as Buffer | undefined;
    } else if (typeof row.w === 'number' && this.watches?.[toRead[row.w - 1]])
      this.watches[toRead[row.w - 1]].baseline = { value: (row.value as Buffer | null) ?? undefined };
  }

  /** After COMMIT succeeded (or was found applied): arm watches, resolve versionstamps. */
  committed(): void {
    if (this.watches) {
      const again: Buffer[] = [];
      // Once the listener hears this commit's NOTIFY, the values it hears are newer than the baselines.
      const sync = this.token === undefined ? undefined : this.host.syncOf(this.token);
      for (const w of this.watches) {
        // A baseline lost with its reply (the commit was found applied): fire at the first look.
        if (!w.baseline) w.arm((unknownBaseline ??= Buffer.alloc(LIMITS.valueBytes + 1)));
        else w.arm(w.baseline.value, sync);
        if (!w.baseline || this.host.changedSince(w.key, this.since, sync?.heardAt)) again.push(w.key);
      }
      if (again.length > 0) this.host.recheck(again);
    }
    if (!this.stampWaiters) return;
    const stamp = this.stamp;
    if (stamp) for (const w of this.stampWaiters) w.resolve(stamp);
    else {
      // Unreachable: the stamp comes in the reply that also carries the id, and only a commit whose id
      // is known can be found applied. Coded, so that a caller never takes undefined for a stamp.
      const err = new BackendError(
        'BACKEND_UNAVAILABLE',
        'the transaction committed, but its versionstamp was lost with the connection',
      );
      for (const w of this.stampWaiters) w.reject(err);
    }
  }

  aborted(reason: unknown): void {
    this.finished = true;
    if (this.watches) for (const w of this.watches) w.abort();
    if (this.stampWaiters) for (const w of this.stampWaiters) w.reject(reason);
  }

  private known(full: Buffer, value: Buffer | undefined): void {
    (this.written ??= new Map()).set(full.toString('hex'), { full, value });
  }

  private full(key: Buffer): Buffer {
    return withPrefix(this.prefix, key);
  }

  private live(): void {
    assertUnfinished(this.finished);
  }
}
