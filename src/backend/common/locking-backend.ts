import { BackendError, isRetryable } from '../../errors';
import type { Backend, BackendKind, ReadTransaction, Tenant, TransactOptions, Transaction, Watch } from '../types';
import { LIMITS } from '../types';
import { LockedTransaction } from './locked-transaction';
import { Mutex } from './mutex';
import type { SyncStore } from './sync-store';
import { checkTenantPath, subtreeRange, tenantPrefix } from './tenant-path';
import { WatchHub } from './watch-hub';

/** One held write lock: the store to write through and how to end it. */
export interface LockSession {
  store: SyncStore;
  commitVersion: bigint;
  commit(): void;
  rollback(): void;
}

/**
 * Serializable transactions by pessimistic locking: one read-write transaction at a time per process
 * (an async mutex), and whatever the engine adds across processes. Memory and SQLite share this.
 */
export abstract class LockingBackend implements Backend {
  abstract readonly kind: BackendKind;
  protected readonly hub = new WatchHub();
  protected readonly writeLock = new Mutex();
  protected closed = false;

  /** Takes the engine's write lock (retrying asynchronously if another process holds it). */
  protected abstract begin(): Promise<LockSession>;
  /** Runs `fn` on a consistent read-only view of the committed data. */
  protected abstract snapshot<T>(fn: (store: SyncStore) => Promise<T>): Promise<T>;
  protected abstract closeEngine(): Promise<void>;

  async openTenant(path: readonly string[]): Promise<Tenant> {
    this.open();
    const checked = checkTenantPath(path);
    return new LockingTenant(this, checked, tenantPrefix(checked));
  }

  async removeTenant(path: readonly string[]): Promise<void> {
    const { start, end } = subtreeRange(checkTenantPath(path));
    await this.transactAt(Buffer.alloc(0), (tx) => tx.clearRange(start, end), {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writeLock.run(async () => {
      this.closed = true;
      this.hub.cancelAll();
      await this.closeEngine();
    });
  }

  async transactAt<T>(prefix: Buffer, fn: (tx: Transaction) => T | Promise<T>, options: TransactOptions): Promise<T> {
    const maxRetries = options.maxRetries ?? 100;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.writeLock.run(() => this.attempt(prefix, fn, options.timeoutMs ?? LIMITS.transactionMs));
      } catch (err) {
        if (!isRetryable(err) || attempt >= maxRetries) throw err;
        await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) * Math.random()));
      }
    }
  }

  async readAt<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    this.open();
    return this.snapshot(async (store) => {
      const tx = new LockedTransaction(store, prefix, 0n, this.hub);
      try {
        return await fn({ get: (k) => tx.get(k), getRange: (s, e, o) => tx.getRange(s, e, o) });
      } finally {
        tx.finish();
      }
    });
  }

  private async attempt<T>(prefix: Buffer, fn: (tx: Transaction) => T | Promise<T>, timeoutMs: number): Promise<T> {
    this.open();
    const session = await this.begin();
    const tx = new LockedTransaction(session.store, prefix, session.commitVersion, this.hub);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new BackendError(
                'TRANSACTION_TIMED_OUT',
                `transaction ran longer than ${timeoutMs} ms; keep transaction bodies short (slow work belongs in @OnLocked or actions)`,
              ),
            ),
          timeoutMs,
        );
      });
      const result = await Promise.race([Promise.resolve().then(() => fn(tx)), timeout]);
      tx.finish();
      session.commit();
      tx.committed();
      return result;
    } catch (err) {
      tx.finish();
      session.rollback();
      tx.aborted(err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private open(): void {
    if (this.closed) throw new BackendError('BACKEND_CLOSED', `this ${this.kind} backend has been closed`);
  }
}

class LockingTenant implements Tenant {
  constructor(
    readonly backend: LockingBackend,
    readonly path: readonly string[],
    private readonly prefix: Buffer,
  ) {}

  transact<T>(fn: (tx: Transaction) => T | Promise<T>, options: TransactOptions = {}): Promise<T> {
    return this.backend.transactAt(this.prefix, fn, options);
  }

  read<T>(fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    return this.backend.readAt(this.prefix, fn);
  }

  watch(key: Buffer): Promise<Watch> {
    return this.transact((tx) => tx.watch(key));
  }
}
