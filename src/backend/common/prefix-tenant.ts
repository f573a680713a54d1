import type {
  Backend,
  ReadTransaction,
  Tenant,
  TransactOptions,
  Transaction,
  Watch,
  WatchOptions,
} from '../types';

/** What a backend offers its tenants: transactions and snapshot reads under a key prefix. */
export interface PrefixHost extends Backend {
  transactAt<T>(
    prefix: Buffer,
    fn: (tx: Transaction) => T | Promise<T>,
    options: TransactOptions,
  ): Promise<T>;
  readAt<T>(prefix: Buffer, fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T>;
}

/** A tenant is a key prefix on its backend (a FoundationDB directory's prefix, or the tuple of its path). */
export class PrefixTenant implements Tenant {
  constructor(
    readonly backend: PrefixHost,
    readonly path: readonly string[],
    private readonly prefix: Buffer,
  ) {}

  transact<T>(fn: (tx: Transaction) => T | Promise<T>, options: TransactOptions = {}): Promise<T> {
    return this.backend.transactAt(this.prefix, fn, options);
  }

  read<T>(fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    return this.backend.readAt(this.prefix, fn);
  }

  watch(key: Buffer, options?: WatchOptions): Promise<Watch> {
    return this.transact((tx) => tx.watch(key, options));
  }
}
