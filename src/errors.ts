/**
 * Every error dgen-ts throws is a DgenError with a stable string `code`, so callers can branch on
 * `err.code` instead of parsing messages. Messages say what went wrong and what to do about it.
 */
export type ErrorCode =
  | 'BAD_BACKEND_SPEC'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_CLOSED'
  | 'BAD_ARGUMENT'
  | 'BAD_KEY'
  | 'VALUE_TOO_LARGE'
  | 'KEY_TOO_LARGE'
  | 'TRANSACTION_TOO_LARGE'
  | 'TRANSACTION_TIMED_OUT'
  | 'TRANSACTION_CONFLICT'
  | 'TRANSACTION_FINISHED'
  | 'TENANT_REQUIRED'
  | 'CALL_TIMEOUT'
  | 'NO_HANDLER'
  | 'BAD_RETURN'
  | 'BAD_DEFINITION'
  | 'HANDLER_FAILED'
  | 'NOT_SERIALIZABLE'
  | 'STOPPED'
  | 'ALREADY_REGISTERED'
  | 'NOT_FOUND'
  | 'FEED_FAILED';

export class DgenError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input to a public function was malformed. */
export class BadArgumentError extends DgenError {}
/** The storage layer could not do what was asked (limits, conflicts, unavailability). */
export class BackendError extends DgenError {}
/** A retryable transaction conflict: the transaction body may be run again. */
export class ConflictError extends BackendError {
  constructor(message = 'transaction conflicted with a concurrent commit; it is safe to retry') {
    super('TRANSACTION_CONFLICT', message);
  }
}
/** A call did not get its reply in time. */
export class CallTimeoutError extends DgenError {}
/** A class or handler is defined wrongly (caught when the class is started). */
export class DefinitionError extends DgenError {}
/** A handler threw or returned something it must not. */
export class HandlerError extends DgenError {}
/** A value cannot be stored faithfully. */
export class SerializationError extends DgenError {}
/** The server or follower this ref points to has stopped. */
export class StoppedError extends DgenError {
  constructor(what = 'server') {
    super('STOPPED', `this ${what} has stopped; start it again with Runtime.start`);
  }
}

export function isRetryable(err: unknown): boolean {
  return err instanceof DgenError && err.code === 'TRANSACTION_CONFLICT';
}
