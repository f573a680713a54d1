/**
 * The ChangesFollower: follows a CouchDB `_changes` feed live and survives every kind of connection
 * trouble (ICouch's ChangesFollower, plus durable checkpoints). See DESIGN §5.
 */
export { ChangesFollower, OnChange, OnError, type ChangesFollowerOptions } from './decorators';
export { follow, retry, type FollowReturn, type RetryReturn } from './returns';
export type { FollowerRef, FollowerStartOptions, CallFrom } from './follower-ref';
export type { FollowerEvent, ReconnectReason } from './follower-events';
export type { ChangeRow, Seq } from './change-row';
export type { DbTarget, BasicAuth } from './db-target';
export {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_JITTER_MS,
  DEFAULT_MAX_LINE_BYTES,
  type FollowOptions,
  type FeedKind,
  type CheckpointOptions,
  type QueryValue,
} from './follow-options';
export { FeedError, type FeedFailureKind } from './feed-error';
export { CheckpointStore, type Checkpoint } from './checkpoint-store';
export { DEFAULT_RETRY_MS } from './follower-process';
