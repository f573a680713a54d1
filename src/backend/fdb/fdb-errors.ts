import { BackendError, ConflictError } from '../../errors';
import { LIMITS } from '../types';

/** FoundationDB error codes we translate (https://apple.github.io/foundationdb/api-error-codes.html). */
export const FDB = {
  transactionTooOld: 1007,
  notCommitted: 1020,
  commitUnknownResult: 1021,
  transactionCancelled: 1025,
  transactionTimedOut: 1031,
  tooManyWatches: 1032,
  transactionTooLarge: 2101,
  keyTooLarge: 2102,
  valueTooLarge: 2103,
} as const;

/** The numeric code of an FDBError, or undefined for anything else. */
export function fdbErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'number' ? code : undefined;
}

/** An FDBError as the DgenError the contract promises (others pass through unchanged). */
export function translateFdbError(err: unknown): unknown {
  switch (fdbErrorCode(err)) {
    case FDB.transactionTooLarge:
      return new BackendError(
        'TRANSACTION_TOO_LARGE',
        `transaction writes more than ${LIMITS.transactionBytes} bytes; split the work across transactions`,
        { cause: err },
      );
    case FDB.keyTooLarge:
      return new BackendError('KEY_TOO_LARGE', `key exceeds the ${LIMITS.keyBytes}-byte limit`, {
        cause: err,
      });
    case FDB.valueTooLarge:
      return new BackendError(
        'VALUE_TOO_LARGE',
        `value exceeds the ${LIMITS.valueBytes}-byte limit; split it into chunks`,
        { cause: err },
      );
    case FDB.transactionTimedOut:
      return new BackendError('TRANSACTION_TIMED_OUT', 'FoundationDB timed the transaction out', {
        cause: err,
      });
    case FDB.notCommitted:
      return new ConflictError(
        `transaction conflicted with a concurrent commit (FoundationDB: ${(err as Error).message}); it is safe to retry`,
      );
    default:
      return err;
  }
}
