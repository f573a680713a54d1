import { BackendError } from '../../errors';
import { LIMITS } from '../types';

export function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key))
    throw new BackendError(
      'BAD_KEY',
      `keys must be Buffers (got ${typeof key}); build them with pack([...])`,
    );
  if (key.length > LIMITS.keyBytes)
    throw new BackendError(
      'KEY_TOO_LARGE',
      `key of ${key.length} bytes exceeds the ${LIMITS.keyBytes}-byte limit`,
    );
}

export function checkValue(value: Buffer): void {
  if (!Buffer.isBuffer(value))
    throw new BackendError('BAD_KEY', `values must be Buffers (got ${typeof value})`);
  checkValueSize(value.length);
}

export function checkValueSize(bytes: number): void {
  if (bytes > LIMITS.valueBytes)
    throw new BackendError(
      'VALUE_TOO_LARGE',
      `value of ${bytes} bytes exceeds the ${LIMITS.valueBytes}-byte limit; split it into chunks`,
    );
}

/** Counts the bytes a transaction writes, as FoundationDB does, and enforces the 10 MB limit. */
export class WriteBudget {
  private bytes = 0;
  spend(n: number): void {
    this.bytes += n;
    if (this.bytes > LIMITS.transactionBytes)
      throw new BackendError(
        'TRANSACTION_TOO_LARGE',
        `transaction writes more than ${LIMITS.transactionBytes} bytes; split the work across transactions`,
      );
  }
}
