import type {
  Backend,
  KeyTuple,
  ReadTransaction,
  Tenant,
  TransactOptions,
  Transaction,
  Watch,
  WatchOptions,
} from '../../../src/backend/types';
import { defersFlush } from '../../../src/backend/common/defer-flush';

/**
 * Commits seen by a CountingBackend: those that wrote something, and those that only read or watched;
 * `deferred` counts the writing ones that deferred their flush (TransactOptions.deferFlush), so at
 * SQLite's `full` the fsyncs are `writes - deferred`; `reads` counts snapshot reads (`tenant.read`).
 */
export interface CommitCounts {
  writes: number;
  readOnly: number;
  deferred: number;
  reads: number;
}

/**
 * Wraps any backend so that its tenants count their committed transactions: a transaction counts once
 * when `transact` resolves (re-runs of its body after a conflict do not count twice), as a write commit
 * if its last run wrote anything. Works for every backend, since it only sees the Tenant contract.
 */
export function countingBackend(inner: Backend): Backend & { readonly counts: CommitCounts } {
  const counts: CommitCounts = { writes: 0, readOnly: 0, deferred: 0, reads: 0 };
  const backend: Backend & { counts: CommitCounts } = {
    kind: inner.kind,
    counts,
    openTenant: async (path) => countingTenant(await inner.openTenant(path), backend, counts),
    removeTenant: (path) => inner.removeTenant(path),
    close: () => inner.close(),
  };
  return backend;
}

function countingTenant(inner: Tenant, backend: Backend, counts: CommitCounts): Tenant {
  const tenant: Tenant = {
    path: inner.path,
    backend,
    async transact<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactOptions): Promise<T> {
      let wrote = false;
      const result = await inner.transact((tx) => {
        wrote = false;
        return fn(writeNoting(tx, () => (wrote = true)));
      }, options);
      if (wrote) counts.writes++;
      else counts.readOnly++;
      // A deferFlush function is answered at the commit on PostgreSQL; elsewhere it means a flush.
      const d = options?.deferFlush;
      if (wrote && (typeof d === 'function' ? backend.kind === 'postgres' && defersFlush(d) : d === true))
        counts.deferred++;
      return result;
    },
    read: <T>(fn: (tx: ReadTransaction) => T | Promise<T>) => (counts.reads++, inner.read(fn)),
    watch: (key: Buffer, options?: WatchOptions): Promise<Watch> =>
      tenant.transact((tx) => tx.watch(key, options)),
  };
  return tenant;
}

function writeNoting(tx: Transaction, wrote: () => void): Transaction {
  return {
    get: (key) => tx.get(key),
    getRange: (start, end, options) => tx.getRange(start, end, options),
    set: (key, value) => (wrote(), tx.set(key, value)),
    clear: (key) => (wrote(), tx.clear(key)),
    clearRange: (start, end) => (wrote(), tx.clearRange(start, end)),
    add: (key, delta) => (wrote(), tx.add(key, delta)),
    setVersionstampedKey: (tuple: KeyTuple, value) => (wrote(), tx.setVersionstampedKey(tuple, value)),
    setVersionstampedValue: (key, prefix, suffix) => (
      wrote(),
      tx.setVersionstampedValue(key, prefix, suffix)
    ),
    getVersionstamp: () => tx.getVersionstamp(),
    watch: (key, options) => tx.watch(key, options),
  };
}
