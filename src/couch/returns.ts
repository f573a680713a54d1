import { BadArgumentError } from '../errors';
import { brand } from '../returns';
import { resolveDb, type DbTarget, type ResolvedDb } from './db-target';
import { resolveOptions, type FollowOptions, type ResolvedOptions } from './follow-options';

/** What `follow(...)` returns from a follower's `@Init`: the feed to follow and the initial state. */
export interface FollowReturn<S> {
  readonly state: S;
  readonly db: ResolvedDb;
  readonly options: ResolvedOptions;
}

/** What `retry(...)` returns from `@OnError`: reconnect after `waitMs` (undefined: now, with jitter). */
export interface RetryReturn<S> {
  readonly state: S;
  readonly waitMs?: number;
}

/**
 * From a follower's `@Init`: follow `db`'s `_changes` feed starting with `state`.
 * Checks `db` and `options` at once (BAD_ARGUMENT), so a mistake fails `Runtime.start`.
 */
export function follow<S>(db: DbTarget, state: S, options?: FollowOptions): FollowReturn<S> {
  return brand('follow', { state, db: resolveDb(db), options: resolveOptions(options) }) as FollowReturn<S>;
}

/**
 * From `@OnError`: keep following. `retry(s)` reconnects now (after a random jitter),
 * `retry(s, ms)` after `ms` (plus jitter), `retry(s, Infinity)` only when `ref.retryNow()` is called.
 */
export function retry<S>(state: S, waitMs?: number): RetryReturn<S> {
  if (waitMs !== undefined && (typeof waitMs !== 'number' || Number.isNaN(waitMs) || waitMs < 0))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `retry(state, waitMs): waitMs must be a non-negative number of milliseconds or Infinity (got ${String(waitMs)})`,
    );
  return brand('retry', waitMs === undefined ? { state } : { state, waitMs }) as RetryReturn<S>;
}
