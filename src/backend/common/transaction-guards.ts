import { BackendError } from '../../errors';

/** `key` under the tenant's `prefix` (no copy for the root tenant). */
export const withPrefix = (prefix: Buffer, key: Buffer): Buffer =>
  prefix.length === 0 ? key : Buffer.concat([prefix, key], prefix.length + key.length);

/** TRANSACTION_FINISHED for any use of a transaction after its body ended. */
export function assertUnfinished(finished: boolean): void {
  if (finished)
    throw new BackendError(
      'TRANSACTION_FINISHED',
      'this transaction has already committed, failed or timed out; do its work inside the transact() body',
    );
}

/** Whether `tx.watch`'s options ask for a lazy watch (WatchOptions); BAD_ARGUMENT for anything else. */
export function isLazyWatch(options: unknown): boolean {
  if (options === undefined) return false;
  if (typeof options === 'object' && options !== null) {
    const { lazy } = options as { lazy?: unknown };
    if (lazy === undefined || typeof lazy === 'boolean') return lazy === true;
  }
  throw new BackendError(
    'BAD_ARGUMENT',
    `watch options must be an object like { lazy: true } (got ${typeof options === 'object' ? JSON.stringify(options) : String(options)})`,
  );
}
