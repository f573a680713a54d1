import type { ReservedSql } from 'postgres';
import { BackendError } from '../../errors';
import { checkKey, checkValue, checkValueSize, WriteBudget } from '../common/limits';
import { packVersionstampedTuple } from '../common/versionstamp';
import type { WatchHub } from '../common/watch-hub';
import type { KeyTuple, KeyValue, RangeOptions, Transaction, Versionstamp, Watch } from '../types';
import { CommitOutcomeUnknown, isConnectionLoss } from './postgres-errors';
import type { Statements } from './schema';
import { postgresCounters } from './counters';
import { keyHash } from './key-hash';
import { assertUnfinished, withPrefix } from '../common/transaction-guards';

const EMPTY = Buffer.alloc(0);
const noop = (): void => undefined;
/** Past this many touched keys a commit's NOTIFY says '*' (recheck every watch) instead of listing them. */
const MAX_LISTED_KEYS = 400;

interface Stmt {
  text: string;
  params: unknown[];
}

type Row = Record<string, unknown>;

/** What the transaction needs from its backend. */
export interface TxHost {
  readonly st: Statements;
  readonly hub: WatchHub;
  readonly channel: string;
  /** The LISTEN side's count of notifications handled so far (see `watch`). */
  notifications(): number;
  /** Watches were armed with a baseline older than some notification: look at their keys again. */
  recheck(keys: Buffer[]): void;
  /** Errors of reads, as the contract's (thrown to the body). */
  translate(err: unknown): unknown;
}

/**
 * One attempt of a contract transaction on one reserved connection, in PostgreSQL's SERIALIZABLE
 * isolation. Writes are buffered and go out in order, pipelined, either with the next read (so the
 * server answers reads with them applied: read-your-writes) or with COMMIT: a transaction that only
 * writes costs one round trip, BEGIN and COMMIT included; each read costs one more.
 *
 * Adds and versionstamps take the commit lock first (see schema.ts): the holders of that lock commit
 * one at a time, which orders versionstamps by commit, and lets concurrent adders to one counter queue
 * up instead of failing each other with serialization errors.
 */
export class PostgresTransaction implements Transaction {
  private readonly budget = new WriteBudget();
  private pending: Stmt[] = [];
  private begun = false;
  private locked = false;
  private lockWanted = false;
  private stampWanted = false;
  private finished = false;
  /** Full keys written (hashes for NOTIFY), or '*' once a range was cleared or too many were. */
  private touched: Set<string> | '*' | undefined;
  private nextUserVersion = 0;
  private watches:
    | Array<{
        key: Buffer;
        arm: (v: Buffer | undefined) => void;
        abort: () => void;
        baseline: Promise<Buffer | undefined>;
        seenNotifications: number;
      }>
    | undefined;
  private stampWaiters:
    Array<{ resolve: (v: Versionstamp) => void; reject: (e: unknown) => void }> | undefined;
  private stamp: Buffer | undefined;
  /** BEGIN's reply, not yet looked at. */
  private started: Array<Promise<Row[]>> = [];
  /** Whether a statement of the body reached the server. */
  private used = false;
  /** How many buffered writes the last batch sent. */
  private pendingSent = 0;
  /** The client's connection object (caught at the first send) and the error it closed with, if it did. */
  private connection: { onclose?: ((err: unknown) => void) | null } | undefined;
  private lostWith: unknown;
  private loseConnection!: (err: unknown) => void;
  /** Rejects when the connection closes: statements the client queued but never sent would wait for ever. */
  private readonly lost = new Promise<never>((_, reject) => (this.loseConnection = reject));

  constructor(
    private readonly conn: ReservedSql,
    private readonly host: TxHost,
    private readonly prefix: Buffer,
    private readonly readOnly: boolean,
    /** Extra statements after BEGIN (e.g. a longer idle_in_transaction_session_timeout). */
    private readonly beginExtra: readonly string[] = [],
  ) {
    this.lost.catch(noop);
  }

  /** True once BEGIN was sent: the connection needs COMMIT or ROLLBACK before it is reused. */
  get open(): boolean {
    return this.begun;
  }

  /**
   * False once the connection closed under this transaction. The client then keeps it in its pool of
   * closed connections (to reconnect on demand), so it must not be released, and nothing more may be
   * sent on it: a reconnected session would run the rest of the transaction outside any transaction.
   */
  get reusable(): boolean {
    return this.lostWith === undefined;
  }

  /**
   * Gives the connection back to the pool, after a ROLLBACK (not awaited by the caller) if it is still
   * inside a transaction. Never a closed connection: releasing one would put it among the open ones,
   * and the client would then write to its missing socket.
   */
  release(rollback: boolean): Promise<void> | undefined {
    const detach = () => {
      if (this.connection) this.connection.onclose = null;
    };
    if (this.lostWith !== undefined) return void detach();
    if (!rollback) {
      detach();
      this.conn.release();
      return undefined;
    }
    const q = this.conn.unsafe(this.host.st.rollback).execute() as unknown as Promise<unknown>;
    return Promise.race([q, this.lost])
      .then(noop, noop)
      .finally(() => {
        detach();
        if (this.lostWith === undefined) this.conn.release();
      });
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    this.live();
    checkKey(key);
    const [row] = await this.query({ text: this.host.st.get, params: [this.full(key)] });
    return row ? (row.value as Buffer) : undefined;
  }

  async getRange(start: Buffer, end: Buffer, options: RangeOptions = {}): Promise<KeyValue[]> {
    this.live();
    checkKey(start);
    checkKey(end);
    if (Buffer.compare(start, end) >= 0) return [];
    const limit = options.limit && options.limit > 0 ? options.limit : null;
    const rows = await this.query({
      text: options.reverse ? this.host.st.rangeReverse : this.host.st.range,
      params: [this.full(start), this.full(end), limit],
    });
    const n = this.prefix.length;
    return rows.map((r) => ({ key: (r.key as Buffer).subarray(n), value: r.value as Buffer }));
  }

  set(key: Buffer, value: Buffer): void {
    this.live();
    checkKey(key);
    checkValue(value);
    this.budget.spend(key.length + value.length);
    this.write(this.host.st.set, [this.full(key), Buffer.from(value)], key);
  }

  clear(key: Buffer): void {
    this.live();
    checkKey(key);
    this.budget.spend(key.length);
    this.write(this.host.st.clear, [this.full(key)], key);
  }

  clearRange(start: Buffer, end: Buffer): void {
    this.live();
    checkKey(start);
    checkKey(end);
    this.budget.spend(start.length + end.length);
    if (Buffer.compare(start, end) >= 0) return;
    this.touched = '*';
    this.write(this.host.st.clearRange, [this.full(start), this.full(end)]);
  }

  add(key: Buffer, delta: number | bigint): void {
    this.live();
    checkKey(key);
    if (typeof delta === 'number' ? !Number.isSafeInteger(delta) : typeof delta !== 'bigint')
      throw new BackendError('BAD_ARGUMENT', `add() takes an integer delta (got ${String(delta)})`);
    this.budget.spend(key.length + 8);
    this.lockWanted = true;
    this.write(this.host.st.add, [this.full(key), String(BigInt.asIntN(64, BigInt(delta)))], key);
  }

  setVersionstampedKey(tuple: KeyTuple, value: Buffer): void {
    this.live();
    checkValue(value);
    const { data, stampPos } = packVersionstampedTuple(tuple, () => this.nextUserVersion++);
    checkKey(data);
    this.budget.spend(data.length + value.length);
    this.lockWanted = this.stampWanted = true;
    // Its key is known only at commit: not listed in NOTIFY (watching such a key is not portable).
    this.write(this.host.st.setStampedKey, [
      this.full(data),
      this.prefix.length + stampPos + 1,
      Buffer.from(value),
    ]);
  }

  setVersionstampedValue(key: Buffer, prefix: Buffer = EMPTY, suffix: Buffer = EMPTY): void {
    this.live();
    checkKey(key);
    if (!Buffer.isBuffer(prefix) || !Buffer.isBuffer(suffix))
      throw new BackendError('BAD_ARGUMENT', 'setVersionstampedValue takes Buffers for prefix and suffix');
    const length = prefix.length + 10 + suffix.length;
    checkValueSize(length);
    this.budget.spend(key.length + length);
    this.lockWanted = this.stampWanted = true;
    this.write(this.host.st.setStampedValue, [this.full(key), Buffer.from(prefix), Buffer.from(suffix)], key);
  }

  getVersionstamp(): Promise<Versionstamp> {
    this.live();
    this.lockWanted = this.stampWanted = true;
    return new Promise((resolve, reject) => (this.stampWaiters ??= []).push({ resolve, reject }));
  }

  watch(key: Buffer): Watch {
    this.live();
    checkKey(key);
    const full = this.full(key);
    const { watch, arm, abort } = this.host.hub.pending(full);
    // The baseline is the value this transaction sees now, read in the transaction; the LISTEN side's
    // count is noted first: a notification handled between now and the arming may concern a commit
    // after this read, so `committed` looks at the key again if that count moved.
    const seenNotifications = this.host.notifications();
    const baseline = this.get(key);
    baseline.catch(noop);
    (this.watches ??= []).push({ key: full, arm, abort, baseline, seenNotifications });
    return watch;
  }

  /**
   * Sends BEGIN at once, before the body runs: the connection was open when the pool handed it over,
   * and nothing can close it before this call (no I/O in between), so from here on its closing is
   * heard (see `onFirstExecute`). Its reply is collected with the next batch, in the same round trip.
   */
  start(): void {
    this.started = this.send([]);
  }

  /** Stops every later operation: called when the body returns, throws or times out. */
  finish(): void {
    this.finished = true;
  }

  /**
   * Sends what is left, the commit information and COMMIT in one round trip. A lost connection before
   * COMMIT went out rejects with the connection error (nothing was committed); after, with
   * CommitOutcomeUnknown.
   */
  /** Commits; resolves whether COMMIT was sent (else the connection still needs a ROLLBACK). */
  async commit(): Promise<boolean> {
    this.finished = true;
    const wrote = this.pending.length > 0 || this.stampWanted;
    if (!this.used && !wrote) return false; // nothing was read or written: nothing to commit
    if (this.watches) await Promise.all(this.watches.map((w) => w.baseline)); // their errors first
    if (!wrote) {
      const settled = await Promise.allSettled(this.batch([{ text: this.host.st.commit, params: [] }]));
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      return true;
    }
    // The transaction id goes before the writes (which may wait for row locks), so that its reply is
    // most likely in hand if the connection is lost later: it tells whether COMMIT happened.
    const head: Stmt[] = [{ text: this.host.st.xid, params: [] }];
    const tail: Stmt[] = [];
    if (this.stampWanted) tail.push({ text: this.host.st.stamp, params: [] });
    // Inside the transaction, so listeners hear of it exactly when (and only if) it commits.
    if (this.touched !== undefined)
      tail.push({ text: this.host.st.notify, params: [this.host.channel, this.payload()] });
    tail.push({ text: this.host.st.commit, params: [] });
    const sent = this.batch(tail, head);
    const settled = await Promise.allSettled(sent);
    const rowOf = (at: number): Row | undefined => {
      const s = settled[at];
      return s.status === 'fulfilled' ? (s.value as Row[])[0] : undefined;
    };
    const xidAt = sent.length - tail.length - this.pendingSent - 1;
    const xid = rowOf(xidAt)?.xid as string | undefined;
    if (this.stampWanted) this.stamp = rowOf(sent.length - tail.length)?.stamp as Buffer | undefined;
    const failure = settled.find((s) => s.status === 'rejected');
    if (!failure) return true;
    // A server error means the transaction was aborted there. A lost connection may have lost only the
    // replies: the server may have run everything up to and including COMMIT.
    if (isConnectionLoss(failure.reason)) throw new CommitOutcomeUnknown(xid, this.stamp, failure.reason);
    throw failure.reason;
  }

  /** After COMMIT succeeded (or was found applied): arm watches, resolve versionstamps. */
  async committed(): Promise<void> {
    if (this.watches) {
      const again: Buffer[] = [];
      for (const w of this.watches) {
        w.arm(await w.baseline);
        if (this.host.notifications() !== w.seenNotifications) again.push(w.key);
      }
      if (again.length > 0) this.host.recheck(again);
    }
    if (this.stampWaiters) for (const w of this.stampWaiters) w.resolve(this.stamp!);
  }

  aborted(reason: unknown): void {
    this.finished = true;
    if (this.watches) for (const w of this.watches) w.abort();
    if (this.stampWaiters) for (const w of this.stampWaiters) w.reject(reason);
  }

  /** Flushes pending writes with `stmt` and resolves with its rows (or the first error of the batch). */
  /** BEGIN's reply (the first time), then what `send` sends. */
  private batch(tail: Stmt[], head: Stmt[] = []): Array<Promise<Row[]>> {
    this.used = true;
    postgresCounters.roundTrips++;
    const started = this.started;
    this.started = [];
    return [...started, ...this.send(tail, head)];
  }

  private async query(stmt: Stmt): Promise<Row[]> {
    const sent = this.batch([stmt]);
    const settled = await Promise.allSettled(sent);
    const failure = settled.find((s) => s.status === 'rejected');
    if (failure) throw this.host.translate(failure.reason);
    return (settled[settled.length - 1] as PromiseFulfilledResult<Row[]>).value;
  }

  /** Sends BEGIN (first time), the commit lock (when first wanted), pending writes, then `tail`. */
  private send(tail: Stmt[], head: Stmt[] = []): Array<Promise<Row[]>> {
    const batch: Stmt[] = [];
    if (!this.begun) {
      this.begun = true;
      batch.push({ text: this.readOnly ? this.host.st.beginRead : this.host.st.begin, params: [] });
      for (const text of this.beginExtra) batch.push({ text, params: [] });
    }
    if (this.lockWanted && !this.locked) {
      this.locked = true;
      batch.push({ text: this.host.st.commitLock, params: [] });
    }
    batch.push(...head); // after the lock: any SELECT fixes the snapshot
    this.pendingSent = this.pending.length;
    batch.push(...this.pending, ...tail);
    this.pending = [];
    if (this.lostWith !== undefined) {
      const lost = Promise.reject(this.lostWith);
      lost.catch(noop);
      return batch.map(() => lost);
    }
    return batch.map((s, i) => {
      // BEGIN (no parameters, so sent at once) tells us the connection object, to hear of its closing.
      const options =
        i === 0 && !this.connection ? { prepare: true, onexecute: this.onFirstExecute } : { prepare: true };
      const q = this.conn
        .unsafe(s.text, s.params as never[], options as never)
        .execute() as unknown as Promise<Row[]>;
      const settled = Promise.race([q, this.lost]);
      settled.catch(noop); // every outcome is collected by allSettled
      return settled;
    });
  }

  /** The client calls this with its connection object as it sends our first statement. */
  private readonly onFirstExecute = (connection: { onclose?: ((err: unknown) => void) | null }): boolean => {
    this.connection = connection;
    connection.onclose = (err) => {
      this.lostWith = err ?? Object.assign(new Error('connection closed'), { code: 'CONNECTION_CLOSED' });
      this.loseConnection(this.lostWith);
    };
    return true; // true: the connection may take more statements now (pipelining)
  };

  private write(text: string, params: unknown[], key?: Buffer): void {
    this.pending.push({ text, params });
    if (key === undefined || this.touched === '*') return;
    const touched: Set<string> = this.touched ?? (this.touched = new Set());
    touched.add(keyHash(params[0] as Buffer));
    if (touched.size > MAX_LISTED_KEYS) this.touched = '*';
  }

  private payload(): string {
    return this.touched === '*' || this.touched === undefined ? '*' : [...this.touched].join(',');
  }

  private full(key: Buffer): Buffer {
    return withPrefix(this.prefix, key);
  }

  private live(): void {
    assertUnfinished(this.finished);
  }
}
