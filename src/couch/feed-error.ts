import { DgenError } from '../errors';

/**
 * Why a feed failed:
 * - `status`: the server answered with an HTTP status other than 200 (and other than a 400 the
 *   follower handles itself);
 * - `connection`: no connection could be made (refused, unknown host, …) or the server kept closing
 *   it before answering;
 * - `error-row`: the feed itself carried `{"error": …, "reason": …}`;
 * - `protocol`: the server sent something that is not a `_changes` feed;
 * - `replaced`: the database is not the one the seq to resume from was read from (it was deleted
 *   and created again): the follower starts over (`@Init` runs again).
 */
export type FeedFailureKind = 'status' | 'connection' | 'error-row' | 'protocol' | 'replaced';

/** A feed failure, as `@OnError` receives it. Code `FEED_FAILED`. */
export class FeedError extends DgenError {
  readonly kind: FeedFailureKind;
  /** The HTTP status, for kind `status`. */
  readonly status?: number;
  /** CouchDB's `error` and `reason` fields, when the server sent them. */
  readonly error?: string;
  readonly reason?: string;

  constructor(
    kind: FeedFailureKind,
    message: string,
    details: { status?: number; error?: string; reason?: string; cause?: unknown } = {},
  ) {
    super('FEED_FAILED', message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    if (details.status !== undefined) this.status = details.status;
    if (details.error !== undefined) this.error = details.error;
    if (details.reason !== undefined) this.reason = details.reason;
  }
}

/** Error codes (anywhere in an error's cause chain) that mean no connection could be made at all. */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The first error code found along an error's cause chain. */
export function errorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when `err` (from fetch) means the connection could not be made, rather than that it closed. */
export function isConnectFailure(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && CONNECT_FAILURES.has(code);
}

/** A short description of an error for messages (realm-independent: fetch's errors come from Node's own realm). */
export function describeError(err: unknown): string {
  const message = (e: unknown) =>
    typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string'
      ? (e as { message: string }).message
      : undefined;
  const outer = message(err);
  if (outer === undefined) return String(err);
  const inner = message((err as { cause?: unknown }).cause);
  const code = errorCode(err);
  return `${outer}${inner !== undefined && inner !== outer ? `: ${inner}` : ''}${code && !(inner ?? '').includes(code) ? ` (${code})` : ''}`;
}

/** CouchDB's `{ error, reason }` from an error answer's body, when it has one. */
export function parseCouchError(body: string | undefined): { error?: string; reason?: string } {
  if (!body) return {};
  try {
    const v = JSON.parse(body) as { error?: unknown; reason?: unknown };
    return {
      error: typeof v.error === 'string' ? v.error : undefined,
      reason: typeof v.reason === 'string' ? v.reason : undefined,
    };
  } catch {
    return {};
  }
}
