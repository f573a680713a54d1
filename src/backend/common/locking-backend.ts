import { BackendError, isRetryable } from '../../errors';
import { countConflict } from '../../telemetry/backend-metrics';
import type { Backend, BackendKind, ReadTransaction, Tenant, TransactOptions, Transaction } from '../types';
import { LIMITS } from '../types';
import { PrefixTenant } from './prefix-tenant';
import { LockedTransaction } from './locked-transaction';
import { Mutex } from './mutex';
import type { SyncStore } from './sync-store';
import { checkTenantPath, subtreeRange, tenantPrefix } from './tenant-path';
import { TransactionDeadline, transactionTimedOut } from './transaction-deadline';
import { WatchHub } from './watch-hub';

/** One held write lock: the store to write through and how to end it. */
export interface LockSession {
  store: SyncStore;
  /**
   * Allocates this transaction's commit version (called at most once, while the lock is held): it must
   * exceed every version allocated before, in this process or any other sharing the data.
   */
  allocateVersion(): bigint;
  /** Commits; `wrote` says whether the transaction changed anything (engines may tell other processes). */
  commit(wrote: boolean): void;
  rollback(): void;
  /**
   * Engines that can undo one transaction of a group without the others (SQLite's SAVEPOINT) offer
   * these, and then concurrent transactions of this process share one commit (see GroupCommit).
   */
  savepoint?(): void;
  releaseSavepoint?(): void;
  rollbackToSavepoint?(): void;
}

/** Transactions run one after another on one engine transaction, committed together. */
interface Group {
  session: LockSession;
  members: Array<{ tx: LockedTransaction; resolve: () => void; reject: (err: unknown) => void }>;
  /** A member armed watches: later members must note what they write (see LockedTransaction). */
  watching: boolean;
  /** Every member deferred its flush (TransactOptions.deferFlush): the engine commits without one. */
  deferFlush: boolean;
}

type Body<T> = (tx: Transaction) => T | Promise<T>;

const isThenable = (x: unknown): x is PromiseLike<unknown> =>
  x !== null &&
  (typeof x === 'object' || typeof x === 'function') &&
  typeof (x as { then?: unknown }).then === 'function';

/**
 * Serializable transactions by pessimistic locking: one read-write transaction at a time per process
 * (an async mutex), and whatever the engine adds across processes. Memory and SQLite share this.
 *
 * The hot path is kept free of avoidable event-loop hops: a free lock is taken synchronously, an engine
 * may begin synchronously, and a synchronous body runs with no timer at all (its run time is checked
 * afterwards); only an asynchronous body gets a timeout timer.
 *
 * Group commit (engines with savepoints, where a commit costs a disk flush): transactions that start
 * while a group is open run one after another, in arrival order, inside the same engine transaction,
 * each after the first in a savepoint (a body that fails or times out is undone alone; the first, with
 * nothing before it, by rolling back the engine transaction); the group commits once, at the
 * end of the current turn of the event loop (setImmediate), and only then does any member's `transact`
 * resolve, with its watches and versionstamps (one commit version each, in order). A lone transaction
 * pays one event-loop turn; N concurrent ones share one flush. Serializability is unchanged: members
 * are serialized in arrival order, and each sees those before it.
 */
export abstract class LockingBackend implements Backend {
  abstract readonly kind: BackendKind;
  protected readonly hub = new WatchHub();
  protected readonly writeLock = new Mutex();
  private readonly deadline = new TransactionDeadline();
  protected closed = false;
  /** The open group commit, if any (only engines whose sessions have savepoints). */
  private group: Group | undefined;

  /**
   * Takes the engine's write lock: synchronously if it can, else (another process holds it)
   * asynchronously. With `deferFlush`, the commit may skip the disk flush (see TransactOptions).
   */
  protected abstract begin(deferFlush: boolean): LockSession | Promise<LockSession>;
  /** Runs `fn` on a consistent read-only view of the committed data. */
  protected abstract snapshot<T>(fn: (store: SyncStore) => Promise<T>): Promise<T>;
  protected abstract closeEngine(): Promise<void>;
  /** Called after a commit armed new watches: engines shared by several processes start listening. */
  protected watchesArmed(): void {}

  async openTenant(path: readonly string[]): Promise<Tenant> {
    this.open();
    const checked = checkTenantPath(path);
    return new PrefixTenant(this, checked, tenantPrefix(checked));
  }

  async removeTenant(path: readonly string[]): Promise<void> {
    const { start, end } = subtreeRange(checkTenantPath(path));
    await this.transactAt(Buffer.alloc(0), (tx) => tx.clearRange(start, end), {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writeLock.run(async () => {
      if (this.closed) return;
      this.closed = true;
      if (this.group) this.commitGroup(this.group);
      this.deadline.dispose();
      this.hub.cancelAll();
      await this.closeEngine();
    });
  }

  async transactAt<T>(prefix: Buffer, fn: Body<T>, options: TransactOptions): Promise<T> {
    const maxRetries = options.maxRetries ?? 100;
    const timeoutMs = options.timeoutMs ?? LIMITS.transactionMs;
    // A deferFlush function would answer only at the commit: too late for SQLite's synchronous setting,
    // which cannot change inside a transaction. Such a transaction is flushed.
    const deferFlush = options.deferFlush === true;
    for (let attempt = 0; ; attempt++) {
      this.open();
      if (!this.writeLock.tryLock()) await this.writeLock.lock();
      let member: { value: T; committed: Promise<void> } | undefined;
      try {
        this.open(); // closed while we waited for the lock
        let group = this.group;
        // A transaction that must be flushed does not join a group that will not be: that group
        // commits now (its members come first, as they arrived), and a flushed one begins.
        if (group && group.deferFlush && !deferFlush) {
          this.commitGroup(group);
          group = undefined;
        }
        if (!group) {
          const begun = this.begin(deferFlush);
          const session = begun instanceof Promise ? await begun : begun;
          if (!session.savepoint) return await this.run(session, prefix, fn, timeoutMs);
          group = this.group = { session, members: [], watching: false, deferFlush };
          setImmediate(() => void this.flush(group!));
        }
        const joined = this.runMember(group, prefix, fn, timeoutMs);
        member = joined instanceof Promise ? await joined : joined;
      } catch (err) {
        if (isRetryable(err)) countConflict(this.kind, 'TRANSACTION_CONFLICT'); // ops hook: telemetry
        if (!isRetryable(err) || attempt >= maxRetries) throw err;
      } finally {
        this.writeLock.unlock();
      }
      if (member)
        try {
          await member.committed;
          return member.value;
        } catch (err) {
          if (!isRetryable(err) || attempt >= maxRetries) throw err;
        }
      await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) * Math.random()));
    }
  }

  async readAt<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    this.open();
    return this.snapshot(async (store) => {
      const tx = new LockedTransaction(store, prefix, noVersion, unwatched);
      try {
        return await fn({ get: (k) => tx.get(k), getRange: (s, e, o) => tx.getRange(s, e, o) });
      } finally {
        tx.finish();
      }
    });
  }

  /** Runs the body on a held session and commits or rolls back; returns a promise only for async bodies. */
  private run<T>(session: LockSession, prefix: Buffer, fn: Body<T>, timeoutMs: number): T | Promise<T> {
    const tx = new LockedTransaction(session.store, prefix, () => session.allocateVersion(), this.hub);
    return this.execute(
      tx,
      fn,
      timeoutMs,
      () => this.commit(session, tx),
      (err) => this.abort(session, tx, err),
    );
  }

  /**
   * Runs the body as a member of the open group, in a savepoint: resolves with its value and a promise
   * of the group's commit, or throws (having undone only this member's writes).
   */
  private runMember<T>(
    group: Group,
    prefix: Buffer,
    fn: Body<T>,
    timeoutMs: number,
  ): { value: T; committed: Promise<void> } | Promise<{ value: T; committed: Promise<void> }> {
    const session = group.session;
    // The first member needs no savepoint (two statements fewer for a lone transaction, the usual
    // case): if it fails, nothing else is in the engine transaction, which is rolled back whole and
    // the group dropped (the next transaction begins another).
    const first = group.members.length === 0;
    if (!first) session.savepoint!();
    const tx = new LockedTransaction(
      session.store,
      prefix,
      () => session.allocateVersion(),
      this.hub,
      group.watching,
    );
    let committed!: Promise<void>;
    const joined = () => {
      tx.finish();
      if (!first) session.releaseSavepoint!();
      committed = new Promise<void>((resolve, reject) => group.members.push({ tx, resolve, reject }));
      if (tx.armsWatches) group.watching = true;
    };
    const failed = (err: unknown) => {
      tx.finish();
      if (first) {
        if (this.group === group) this.group = undefined;
        session.rollback();
      } else session.rollbackToSavepoint!();
      tx.aborted(err);
    };
    const value = this.execute(tx, fn, timeoutMs, joined, failed);
    return isThenable(value)
      ? (value as Promise<T>).then((v) => ({ value: v, committed }))
      : { value: value as T, committed };
  }

  /** The group's turn has ended: commit it once the body running now (if any) is done. */
  private async flush(group: Group): Promise<void> {
    if (this.group !== group) return;
    if (!this.writeLock.tryLock()) await this.writeLock.lock();
    try {
      this.commitGroup(group);
    } finally {
      this.writeLock.unlock();
    }
  }

  /** Commits a group (holding the write lock) and settles its members, in order. */
  private commitGroup(group: Group): void {
    if (this.group !== group) return;
    this.group = undefined;
    const { session, members } = group;
    if (members.length === 0) return session.rollback(); // every member failed
    try {
      session.commit(members.some((m) => m.tx.wrote));
    } catch (err) {
      session.rollback();
      for (const m of members) {
        m.tx.aborted(err);
        m.reject(err);
      }
      return;
    }
    let arms = false;
    for (const m of members) {
      m.tx.committed();
      arms ||= m.tx.armsWatches;
      m.resolve();
    }
    if (arms) this.watchesArmed();
  }

  /**
   * Runs a body with its time limit: `done` once it returned (and its promise settled), `fail` with
   * the error if it threw, rejected or ran out of time. Returns a promise only for async bodies.
   */
  private execute<T>(
    tx: LockedTransaction,
    fn: Body<T>,
    timeoutMs: number,
    done: () => void,
    fail: (err: unknown) => void,
  ): T | Promise<T> {
    const started = performance.now();
    const ended = done;
    // The body is done: the adds it held back are written now, still inside its transaction or savepoint.
    done = () => {
      try {
        tx.applyAdds();
      } catch (err) {
        fail(err);
        throw err;
      }
      ended();
    };
    let result: T | Promise<T>;
    try {
      result = fn(tx);
      if (!isThenable(result) && performance.now() - started > timeoutMs)
        throw transactionTimedOut(timeoutMs);
    } catch (err) {
      fail(err);
      throw err;
    }
    if (isThenable(result))
      return this.settle(result as PromiseLike<T>, started + timeoutMs, timeoutMs, done, fail);
    done();
    return result;
  }

  private async settle<T>(
    body: PromiseLike<T>,
    deadlineAt: number,
    timeoutMs: number,
    done: () => void,
    fail: (err: unknown) => void,
  ): Promise<T> {
    let value: T;
    try {
      value = await new Promise<T>((resolve, reject) => {
        // The timer can only fire at an await; a body's synchronous stretches are checked when it ends.
        this.deadline.start(Math.max(0, deadlineAt - performance.now()), () =>
          reject(transactionTimedOut(timeoutMs)),
        );
        body.then(resolve, reject);
      });
      if (performance.now() > deadlineAt) throw transactionTimedOut(timeoutMs);
    } catch (err) {
      fail(err);
      throw err;
    } finally {
      this.deadline.stop();
    }
    done();
    return value;
  }

  private commit(session: LockSession, tx: LockedTransaction): void {
    tx.finish();
    try {
      session.commit(tx.wrote);
    } catch (err) {
      this.abort(session, tx, err);
      throw err;
    }
    tx.committed();
    if (tx.armsWatches) this.watchesArmed();
  }

  private abort(session: LockSession, tx: LockedTransaction, err: unknown): void {
    tx.finish();
    session.rollback();
    tx.aborted(err);
  }

  private open(): void {
    if (this.closed) throw new BackendError('BACKEND_CLOSED', `this ${this.kind} backend has been closed`);
  }
}

/**
 * The hub of snapshot reads' transactions: their view has no watch() and they never commit, so one
 * that nobody watches spares each read the sets of written keys (kept while any watch exists).
 */
const unwatched = new WatchHub();

const noVersion = (): never => {
  throw new BackendError('BAD_ARGUMENT', 'a snapshot read has no commit version');
};
