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
  | 'FEED_FAILED'
  | 'VERSION_AHEAD'
  | 'UPGRADE_FAILED';

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
/** A message no handler takes (NO_HANDLER): a call rejects with it, a cast is dead-lettered. */
export class NoHandlerError extends HandlerError {
  constructor(message: string) {
    super('NO_HANDLER', message);
  }
}
/** A value cannot be stored faithfully. */
export class SerializationError extends DgenError {}
/** The server or follower this ref points to has stopped. */
export class StoppedError extends DgenError {
  constructor(what = 'server', message?: string) {
    super('STOPPED', message ?? `this ${what} has stopped; start it again with Runtime.start`);
  }
}

/**
 * The stored state was written by a newer version of the class than the one running here
 * (`@DurableServer({ version })`): this process never touches it and steps aside.
 */
export class VersionAheadError extends DgenError {
  constructor(
    message: string,
    /** The version the state was stored with, and this class's (undefined when it crossed the queue). */
    readonly stored?: number,
    readonly running?: number,
  ) {
    super('VERSION_AHEAD', message);
  }
}

/**
 * The error for `code` with `message`, of the class that code is thrown as everywhere: a failure that
 * crossed the queue (a queued call's reply record) comes back as the same class as when it is thrown
 * in this process, so `instanceof StoppedError` does not depend on whether the call was queued.
 */
export function errorFromCode(code: string, message: string): DgenError {
  switch (code as ErrorCode) {
    case 'STOPPED':
      return new StoppedError('server', message);
    case 'CALL_TIMEOUT':
      return new CallTimeoutError('CALL_TIMEOUT', message);
    case 'NOT_SERIALIZABLE':
      return new SerializationError('NOT_SERIALIZABLE', message);
    case 'BAD_DEFINITION':
      return new DefinitionError('BAD_DEFINITION', message);
    case 'BAD_ARGUMENT':
    case 'BAD_BACKEND_SPEC':
      return new BadArgumentError(code as ErrorCode, message);
    case 'TRANSACTION_CONFLICT':
      return new ConflictError(message);
    case 'VALUE_TOO_LARGE':
    case 'KEY_TOO_LARGE':
    case 'TRANSACTION_TOO_LARGE':
    case 'TRANSACTION_TIMED_OUT':
    case 'TRANSACTION_FINISHED':
    case 'BACKEND_UNAVAILABLE':
    case 'BACKEND_CLOSED':
    case 'BAD_KEY':
      return new BackendError(code as ErrorCode, message);
    case 'NO_HANDLER':
      return new NoHandlerError(message);
    case 'VERSION_AHEAD':
      return new VersionAheadError(message);
    case 'HANDLER_FAILED':
    case 'UPGRADE_FAILED':
    case 'BAD_RETURN':
      return new HandlerError(code as ErrorCode, message);
    default:
      return new DgenError(isErrorCode(code) ? code : 'HANDLER_FAILED', message);
  }
}

/** Every code, once (a Record, so adding a code to ErrorCode without listing it here does not compile). */
const CODES: Readonly<Record<ErrorCode, true>> = {
  BAD_BACKEND_SPEC: true,
  BACKEND_UNAVAILABLE: true,
  BACKEND_CLOSED: true,
  BAD_ARGUMENT: true,
  BAD_KEY: true,
  VALUE_TOO_LARGE: true,
  KEY_TOO_LARGE: true,
  TRANSACTION_TOO_LARGE: true,
  TRANSACTION_TIMED_OUT: true,
  TRANSACTION_CONFLICT: true,
  TRANSACTION_FINISHED: true,
  TENANT_REQUIRED: true,
  CALL_TIMEOUT: true,
  NO_HANDLER: true,
  BAD_RETURN: true,
  BAD_DEFINITION: true,
  HANDLER_FAILED: true,
  NOT_SERIALIZABLE: true,
  STOPPED: true,
  ALREADY_REGISTERED: true,
  NOT_FOUND: true,
  FEED_FAILED: true,
  VERSION_AHEAD: true,
  UPGRADE_FAILED: true,
};
const isErrorCode = (code: string): code is ErrorCode => Object.prototype.hasOwnProperty.call(CODES, code);

export function isRetryable(err: unknown): boolean {
  return err instanceof DgenError && err.code === 'TRANSACTION_CONFLICT';
}
