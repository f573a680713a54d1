import type { Database } from 'foundationdb';
import { BackendError, isRetryable } from '../../errors';
import { countConflict } from '../../telemetry/backend-metrics';
import { checkTenantPath } from '../common/tenant-path';
import { transactionTimedOut, withinTimeLimit } from '../common/transaction-deadline';
import type { Backend, ReadTransaction, Tenant, TransactOptions, Transaction } from '../types';
import { LIMITS } from '../types';
import { PrefixTenant } from '../common/prefix-tenant';
import { fdbErrorCode, translateFdbError } from './fdb-errors';
import { FdbTransaction } from './fdb-transaction';
import type { FdbWatch } from './fdb-watch';
import { type FdbModule, loadFoundationDb } from './load-fdb';

type Body<T> = (tx: Transaction) => T | Promise<T>;

/** How many times `read` retries a retryable FoundationDB error (as `transact`'s default maxRetries). */
const READ_RETRIES = 100;

/**
 * FoundationDB through the `foundationdb` npm package, for many machines. Tenants are directories of
 * its directory layer; transactions are FoundationDB's own (optimistic, retried on conflict as
 * `transact` promises); versionstamps, atomic adds and watches are its native ones.
 *
 * The package and libfdb_c are loaded only by `FdbBackend.open` (or `openBackend('fdb:…')`), so
 * everything else works without them.
 */
export class FdbBackend implements Backend {
  readonly kind = 'fdb' as const;
  private readonly fdb: FdbModule;
  private readonly db: Database;
  private readonly watches = new Set<FdbWatch>();
  private closed = false;

  private constructor(fdb: FdbModule, db: Database) {
    this.fdb = fdb;
    this.db = db;
  }

  /**
   * Connects to the cluster named by `clusterFile` (default: FoundationDB's usual lookup:
   * FDB_CLUSTER_FILE, then /etc/foundationdb/fdb.cluster). Throws BACKEND_UNAVAILABLE when the
   * FoundationDB client is not installed.
   */
  static async open(clusterFile?: string): Promise<FdbBackend> {
    const fdb = await loadFoundationDb();
    let db: Database;
    try {
      db = fdb.open(clusterFile || undefined);
    } catch (err) {
      throw new BackendError(
        'BACKEND_UNAVAILABLE',
        `could not open FoundationDB with cluster file ${clusterFile ?? '(default)'}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return new FdbBackend(fdb, db);
  }

  async openTenant(path: readonly string[]): Promise<Tenant> {
    this.open();
    const checked = checkTenantPath(path);
    const dir = await this.run(() => this.fdb.directory.createOrOpen(this.db, [...checked]));
    return new PrefixTenant(this, checked, Buffer.from(dir.content.prefix));
  }

  async removeTenant(path: readonly string[]): Promise<void> {
    this.open();
    const checked = checkTenantPath(path);
    await this.run(() => this.fdb.directory.removeIfExists(this.db, [...checked]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.cancel();
    this.db.close();
  }

  async transactAt<T>(prefix: Buffer, fn: Body<T>, options: TransactOptions): Promise<T> {
    this.open();
    const maxRetries = options.maxRetries ?? 100;
    const timeoutMs = options.timeoutMs ?? LIMITS.transactionMs;
    const tn = this.db.rawCreateTransaction();
    for (let attempt = 0; ; attempt++) {
      const tx = new FdbTransaction(this.fdb, this.db, tn, prefix, this.watches);
      try {
        // The time limit covers the body of each attempt. The timer can only fire at an await, so a
        // body's synchronous stretches are checked before committing. A commit once started is never
        // cancelled: FoundationDB warns that cancelling a transaction while its commit is outstanding
        // may still let the commit happen, even when the commit then fails with transaction_cancelled
        // (its API docs, "transaction-commit-cancel-warning"), so TRANSACTION_TIMED_OUT could no
        // longer promise that nothing was committed.
        const started = performance.now();
        const result = await withinTimeLimit(
          (async () => {
            const value = await fn(tx);
            if (performance.now() - started > timeoutMs) throw transactionTimedOut(timeoutMs);
            return value;
          })(),
          Math.max(0, started + timeoutMs - performance.now()),
          () => tn.rawCancel(),
          timeoutMs,
        );
        tx.finish();
        // commit_unknown_result (1021) goes to rawOnError below like a conflict, which re-runs the body
        // (FoundationDB's own retry loop does the same): if the unknown commit did land, the retry
        // applies the body's writes a second time. That is harmless for sets and clears, but an
        // add() or a versionstamped key is then applied twice; such bodies should be made idempotent
        // (e.g. check a marker key written in the same transaction) where that matters.
        await tn.rawCommit();
        // Watches of a transaction that committed after close() would never be released.
        if (this.closed) tx.aborted();
        else tx.committed();
        return result;
      } catch (err) {
        tx.aborted();
        const code = fdbErrorCode(err);
        if (code === 1020 || isRetryable(err))
          countConflict('fdb', code === 1020 ? 'not_committed' : 'TRANSACTION_CONFLICT'); // ops hook
        if (code !== undefined && attempt < maxRetries) {
          try {
            await tn.rawOnError(code); // resets the transaction and backs off, or rethrows if fatal
            continue;
          } catch (fatal) {
            throw translateFdbError(fatal);
          }
        }
        if (isRetryable(err) && attempt < maxRetries) {
          tn.rawReset();
          await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) * Math.random()));
          continue;
        }
        if (code === undefined && !isRetryable(err)) tn.rawCancel();
        throw translateFdbError(err);
      }
    }
  }

  async readAt<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    this.open();
    const tn = this.db.rawCreateTransaction();
    // Bounded like transact: a body that outlives FoundationDB's 5 s read window fails with
    // transaction_too_old (1007) on every attempt, which rawOnError would retry forever.
    for (let attempt = 0; ; attempt++) {
      const tx = new FdbTransaction(this.fdb, this.db, tn, prefix, this.watches, true);
      try {
        const result = await fn({ get: (k) => tx.get(k), getRange: (s, e, o) => tx.getRange(s, e, o) });
        tx.aborted(); // a read-only transaction needs no commit
        return result;
      } catch (err) {
        tx.aborted();
        const code = fdbErrorCode(err);
        if (code === undefined) throw err;
        if (attempt >= READ_RETRIES) throw translateFdbError(err);
        try {
          await tn.rawOnError(code);
        } catch (fatal) {
          throw translateFdbError(fatal);
        }
      }
    }
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw translateFdbError(err);
    }
  }

  private open(): void {
    if (this.closed) throw new BackendError('BACKEND_CLOSED', 'this fdb backend has been closed');
  }
}
