import type { ChangeRow, Seq } from './change-row';
import type { FeedKind } from './follow-options';

/** Why the follower is about to open a new connection. */
export type ReconnectReason =
  /** The connection closed (cut, reset, server restart): resume after the last handled seq. */
  | 'closed'
  /** The server ended the feed normally (a longpoll answer, a `last_seq` row): continue at once. */
  | 'end'
  /** Nothing arrived within twice the heartbeat: the connection was dropped. */
  | 'heartbeat'
  /** HTTP 400: one more try from the last seq the server accepted. */
  | 'bad_request'
  /** `@OnError` (or the default) said retry, or `retryNow()` was called. */
  | 'retry';

/** Where an error reported on `events$` came from. */
export type ErrorSource =
  'feed' | 'change' | 'call' | 'cast' | 'info' | 'action' | 'checkpoint' | 'terminate';

/** What a follower reports on `events$`. */
export type FollowerEvent =
  | { readonly type: 'connected'; readonly feed: FeedKind; readonly since: Seq | undefined }
  | { readonly type: 'change'; readonly seq: Seq; readonly id: string; readonly row: ChangeRow }
  | { readonly type: 'heartbeat' }
  | { readonly type: 'error'; readonly error: unknown; readonly during: ErrorSource }
  | {
      readonly type: 'reconnecting';
      readonly reason: ReconnectReason;
      /** Milliseconds until the next attempt (Infinity: waiting for `retryNow()`). */
      readonly waitMs: number;
      readonly since: Seq | undefined;
    }
  | { readonly type: 'checkpointed'; readonly seq: Seq }
  /** A row, cast or info that no handler matched. */
  | { readonly type: 'dropped'; readonly kind: 'change' | 'cast' | 'info'; readonly msg: unknown }
  | { readonly type: 'stopped'; readonly reason: unknown };
