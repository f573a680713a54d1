import { BadArgumentError, ConflictError } from '../../errors';
import type {
  Backend,
  ReadTransaction,
  Tenant,
  TransactOptions,
  Transaction,
  Watch,
  WatchOptions,
} from '../types';

export interface FaultyBackendOptions {
  /** The fraction (0..1) of transaction attempts that fail with a retryable conflict. */
  commitFailureRate: number;
  /**
   * When the injected conflict strikes: `'before'` the body runs (nothing ran), `'after'` it ran (its
   * writes are rolled back: the body has had all its effects on the transaction, which then fails to
   * commit), or `'both'` (either, at random). Default `'both'`.
   */
  when?: 'before' | 'after' | 'both';
  /** Seed for the fault pattern, so a failing test can be replayed exactly. Default: random. */
  seed?: number;
}

/** mulberry32: a tiny seeded PRNG, plenty for choosing which attempts fail. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Wraps any backend and makes a chosen fraction of transaction attempts fail with the retryable
 * `ConflictError` (code TRANSACTION_CONFLICT), as FoundationDB does under contention, so tests can
 * prove that code running in transactions is safe to retry: its body runs again, and a failed attempt
 * leaves no trace. The fault is thrown inside the inner transaction, so the inner backend rolls it
 * back and retries it exactly as it would a real conflict (and gives up after `maxRetries`, passing the
 * ConflictError on). Snapshot reads are not affected; watches are set through a (faulty) transaction.
 */
export class FaultyBackend implements Backend {
  readonly faults = { before: 0, after: 0 };
  private readonly random: () => number;
  private readonly rate: number;
  private readonly when: 'before' | 'after' | 'both';

  constructor(
    readonly inner: Backend,
    options: FaultyBackendOptions,
  ) {
    const { commitFailureRate, when = 'both', seed } = options;
    if (!(commitFailureRate >= 0 && commitFailureRate <= 1))
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `commitFailureRate must be within 0..1 (got ${commitFailureRate})`,
      );
    if (when !== 'before' && when !== 'after' && when !== 'both')
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `when must be 'before', 'after' or 'both' (got ${String(when)})`,
      );
    this.rate = commitFailureRate;
    this.when = when;
    this.random = prng(seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  get kind() {
    return this.inner.kind;
  }

  /** How many conflicts have been injected so far. */
  get injectedFaults(): number {
    return this.faults.before + this.faults.after;
  }

  async openTenant(path: readonly string[]): Promise<Tenant> {
    return new FaultyTenant(this, await this.inner.openTenant(path));
  }

  removeTenant(path: readonly string[]): Promise<void> {
    return this.inner.removeTenant(path);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Decides the fate of one attempt: undefined (let it be), 'before' or 'after'. */
  nextFault(): 'before' | 'after' | undefined {
    if (this.random() >= this.rate) return undefined;
    return this.when === 'both' ? (this.random() < 0.5 ? 'before' : 'after') : this.when;
  }

  record(at: 'before' | 'after'): ConflictError {
    this.faults[at]++;
    return new ConflictError(`injected fault (${at} the body): transaction conflicted; it is safe to retry`);
  }
}

class FaultyTenant implements Tenant {
  constructor(
    readonly backend: FaultyBackend,
    private readonly inner: Tenant,
  ) {}

  get path(): readonly string[] {
    return this.inner.path;
  }

  transact<T>(fn: (tx: Transaction) => T | Promise<T>, options?: TransactOptions): Promise<T> {
    return this.inner.transact(async (tx) => {
      const fault = this.backend.nextFault();
      if (fault === 'before') throw this.backend.record('before');
      const result = await fn(tx);
      if (fault === 'after') throw this.backend.record('after');
      return result;
    }, options);
  }

  read<T>(fn: (tx: ReadTransaction) => T | Promise<T>): Promise<T> {
    return this.inner.read(fn);
  }

  watch(key: Buffer, options?: WatchOptions): Promise<Watch> {
    return this.transact((tx) => tx.watch(key, options));
  }
}
