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
  commit(): void;
  rollback(): void;
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
 * may begin synchronously, and a synchronous body commits with no timer at all (its run time is checked
 * afterwards); only an asynchronous body gets a timeout timer.
 */
export abstract class LockingBackend implements Backend {
  abstract readonly kind: BackendKind;
  protected readonly hub = new WatchHub();
  protected readonly writeLock = new Mutex();
  private readonly deadline = new TransactionDeadline();
  protected closed = false;

  /** Takes the engine's write lock: synchronously if it can, else (another process holds it) asynchronously. */
  protected abstract begin(): LockSession | Promise<LockSession>;
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
      this.deadline.dispose();
      this.hub.cancelAll();
      await this.closeEngine();
    });
  }

  async transactAt<T>(prefix: Buffer, fn: Body<T>, options: TransactOptions): Promise<T> {
    const maxRetries = options.maxRetries ?? 100;
    const timeoutMs = options.timeoutMs ?? LIMITS.transactionMs;
    for (let attempt = 0; ; attempt++) {
      this.open();
      if (!this.writeLock.tryLock()) await this.writeLock.lock();
      try {
        this.open(); // closed while we waited for the lock
        const begun = this.begin();
        const session = begun instanceof Promise ? await begun : begun;
        return await this.run(session, prefix, fn, timeoutMs);
      } catch (err) {
        if (isRetryable(err)) countConflict(this.kind, 'TRANSACTION_CONFLICT'); // ops hook: telemetry
        if (!isRetryable(err) || attempt >= maxRetries) throw err;
      } finally {
        this.writeLock.unlock();
      }
      await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) * Math.random()));
    }
  }

  async readAt<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    this.open();
    return this.snapshot(async (store) => {
      const tx = new LockedTransaction(store, prefix, noVersion, this.hub);
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
    const started = performance.now();
    let result: T | Promise<T>;
    try {
      result = fn(tx);
      if (!isThenable(result) && performance.now() - started > timeoutMs)
        throw transactionTimedOut(timeoutMs);
    } catch (err) {
      this.abort(session, tx, err);
      throw err;
    }
    if (isThenable(result))
      return this.settle(session, tx, result as PromiseLike<T>, started + timeoutMs, timeoutMs);
    this.commit(session, tx);
    return result;
  }

  private async settle<T>(
    session: LockSession,
    tx: LockedTransaction,
    body: PromiseLike<T>,
    deadlineAt: number,
    timeoutMs: number,
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
      this.abort(session, tx, err);
      throw err;
    } finally {
      this.deadline.stop();
    }
    this.commit(session, tx);
    return value;
  }

  private commit(session: LockSession, tx: LockedTransaction): void {
    tx.finish();
    try {
      session.commit();
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

const noVersion = (): never => {
  throw new BackendError('BAD_ARGUMENT', 'a snapshot read has no commit version');
};
