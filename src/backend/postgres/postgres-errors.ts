import { BackendError, ConflictError, DgenError } from '../../errors';
import { LIMITS } from '../types';

/** A commit was sent but its reply never came: it may or may not have been applied. */
export class CommitOutcomeUnknown extends Error {
  constructor(
    /** The transaction id, when its reply arrived before the connection was lost. */
    readonly xid: string | undefined,
    readonly stamp: Buffer | undefined,
    override readonly cause: unknown,
    /** The server's incarnation when the id was handed out (see schema.ts BOOT). */
    readonly boot?: string,
  ) {
    super('the connection was lost after COMMIT was sent');
  }
}

export const sqlState = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  const isServer = typeof (err as { severity?: unknown } | null)?.severity === 'string';
  return isServer && typeof code === 'string' ? code : undefined;
};

/**
 * True when the connection (not the transaction) failed: the socket closed or never opened, or the
 * server is shutting down, restarting or full. Nothing of an unfinished transaction was committed, so
 * it can run again on another connection.
 */
export function isConnectionLoss(err: unknown): boolean {
  if (err instanceof DgenError) return false;
  const state = sqlState(err);
  if (state === undefined) {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && /^(CONNECTION_|CONNECT_TIMEOUT|E[A-Z]+$)/.test(code);
  }
  // 08: connection exception; 57P01-3: shutdown, crash, starting up; 53300: too many connections;
  // 25P03: idle_in_transaction_session_timeout ended the session.
  return /^08/.test(state) || /^57P0[123]$/.test(state) || state === '53300' || state === '25P03';
}

/** Re-running the body may succeed: a serialization failure or a deadlock. */
export const isSerializationFailure = (err: unknown): boolean => {
  const state = sqlState(err);
  return state === '40001' || state === '40P01';
};

/** A client or server error as the DgenError the contract promises (DgenErrors pass through). */
export function translatePgError(err: unknown, scrub: (s: string) => string): unknown {
  if (err instanceof DgenError) return err;
  const message = scrub(err instanceof Error ? err.message : String(err));
  const state = sqlState(err);
  if (isSerializationFailure(err))
    return new ConflictError(
      `transaction conflicted with a concurrent commit (PostgreSQL ${state}: ${message}); it is safe to retry`,
    );
  if (state === '54000')
    return new BackendError(
      'KEY_TOO_LARGE',
      `PostgreSQL could not index the key (${message}): a key's index entry, after compression, must fit in about 2,700 bytes on this backend, below the ${LIMITS.keyBytes}-byte contract limit`,
      { cause: err },
    );
  if (state === '57014')
    return new BackendError('TRANSACTION_TIMED_OUT', `PostgreSQL cancelled a statement: ${message}`, {
      cause: err,
    });
  if (isConnectionLoss(err) || state === undefined || /^(28|3D)/.test(state))
    return new BackendError('BACKEND_UNAVAILABLE', `PostgreSQL unavailable: ${message}`, { cause: err });
  return new BackendError('BACKEND_UNAVAILABLE', `PostgreSQL error ${state}: ${message}`, { cause: err });
}
