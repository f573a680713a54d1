import type { GenServerEvent } from '../kernel/events';
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

/**
 * What a follower reports on `events$`: the events every gen_server reports (`handler-failed`,
 * `dropped`, `action-failed`, `terminate-failed`, `stopped`; see GenServerEvent) and the feed's own.
 */
export type FollowerEvent =
  | GenServerEvent
  | { readonly type: 'connected'; readonly feed: FeedKind; readonly since: Seq | undefined }
  | { readonly type: 'change'; readonly seq: Seq; readonly id: string; readonly row: ChangeRow }
  | { readonly type: 'heartbeat' }
  /** The feed failed (a FeedError or a protocol error), or a row could not be read; see `@OnError`. */
  | { readonly type: 'feed-error'; readonly error: unknown }
  | {
      readonly type: 'reconnecting';
      readonly reason: ReconnectReason;
      /** Milliseconds until the next attempt (Infinity: waiting for `retryNow()`). */
      readonly waitMs: number;
      readonly since: Seq | undefined;
    }
  | { readonly type: 'checkpointed'; readonly seq: Seq }
  /** Storing a checkpoint failed: the follower stops with that error. */
  | { readonly type: 'checkpoint-failed'; readonly error: unknown };
