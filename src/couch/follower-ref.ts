import type { Observable } from 'rxjs';
import type { Clock } from '../kernel/clock';
import type { Seq } from './change-row';
import type { FollowerEvent } from './follower-events';

/** Options of `Runtime.start` that a follower uses. */
export interface FollowerStartOptions {
  /** Register under this name in the process (`Runtime.whereis(name)`). */
  readonly name?: string;
  /** Default timeout of `ref.call` in milliseconds (5000). */
  readonly callTimeout?: number;
  /** Where idle timeouts take the time from: a `VirtualClock` from `dgen-ts/testing` in tests. */
  readonly clock?: Clock;
}

/** Who sent a call: `from.reply(value)` answers it later, after a handler returned `noreply`. */
export interface CallFrom {
  readonly id: number;
  reply(value: unknown): void;
}

/** A running changes follower. Every method of a stopped follower rejects (or throws) STOPPED. */
export interface FollowerRef<S = unknown> {
  /** Handled by `@OnCall` in turn with changes; resolves with the reply (CALL_TIMEOUT after `timeout`). */
  call<R = unknown>(msg: unknown, options?: { timeout?: number }): Promise<R>;
  /** Queued for `@OnCast`; resolves once queued. */
  cast(msg: unknown): Promise<void>;
  /** Queued for `@OnInfo`. */
  send(info: unknown): void;
  /** Stops after the handler that is running; resolves once stopped (`done` gives `reason`, default 'normal'); idempotent. */
  stop(reason?: unknown): Promise<void>;
  /** Ends any wait before the next connection attempt (after a failure or `retry(s, Infinity)`). */
  retryNow(): void;
  /** The state between handlers. */
  readState(): Promise<S>;
  /** The seq of the last handled row (where a new connection resumes). */
  readonly lastSeq: Seq | undefined;
  readonly events$: Observable<FollowerEvent>;
  /** Resolves with the stop reason exactly as given (an Error when a handler threw). Never rejects. */
  readonly done: Promise<unknown>;
}
