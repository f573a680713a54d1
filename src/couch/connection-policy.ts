import { HandlerError } from '../errors';
import { callHandler, thrownBy } from '../kernel/invoke';
import { deepFreeze } from '../kernel/freeze';
import { returnKind, type StopReturn } from '../returns';
import type { Seq } from './change-row';
import type { FeedCursor } from './feed-cursor';
import { describeError, FeedError, isConnectFailure, parseCouchError } from './feed-error';
import { StopSignal, type FollowerCore } from './follower-core';
import type { ReconnectReason } from './follower-events';
import type { RetryReturn } from './returns';

/** Without `@OnError`, a feed failure retries after this long (as ICouch). */
export const DEFAULT_RETRY_MS = 60_000;
/** This many closes in a row before any answer count as a connection failure (goes to `@OnError`). */
const CLOSED_BEFORE_ANSWER_LIMIT = 3;

/** What to do after a connection ends: wait this long, then connect again. */
export interface Next {
  readonly reason: ReconnectReason;
  readonly waitMs: number;
}

/**
 * When to connect again: after a normal end at once, after a cut with jitter, after a failure as
 * `@OnError` says (ICouch's ChangesFollower, decision for decision).
 */
export class ConnectionPolicy<S> {
  private closedBeforeAnswer = 0;

  constructor(
    private readonly core: FollowerCore<S>,
    private readonly url: string,
    private readonly jitterMs: number,
  ) {}

  jitter(): number {
    return Math.floor(Math.random() * this.jitterMs);
  }

  /** The server answered: closes before an answer count from zero again. */
  answered(): void {
    this.closedBeforeAnswer = 0;
  }

  /** A connection that could not be made or was lost (never a handler's error). */
  lost(cause: unknown, answered: boolean, silent: boolean): Next | Promise<Next> {
    if (silent) return { reason: 'heartbeat', waitMs: this.jitter() };
    if (isConnectFailure(cause))
      return this.failure(
        new FeedError('connection', `cannot connect to ${this.url}: ${describeError(cause)}`, { cause }),
      );
    if (!answered && ++this.closedBeforeAnswer > CLOSED_BEFORE_ANSWER_LIMIT) {
      this.closedBeforeAnswer = 0;
      return this.failure(
        new FeedError(
          'connection',
          `${this.url} closed the connection before answering ${CLOSED_BEFORE_ANSWER_LIMIT + 1} times in a row: ${describeError(cause)}`,
          { cause },
        ),
      );
    }
    return { reason: 'closed', waitMs: this.jitter() };
  }

  /** HTTP 400 for `since`: one more try from the last seq the server accepted, else stop. */
  badRequest(cursor: FeedCursor, since: Seq | undefined, body: string | undefined): Next {
    const { error, reason } = parseCouchError(body);
    this.core.life.emit({
      type: 'feed-error',
      error: new FeedError(
        'status',
        `${this.url}/_changes answered HTTP 400 for since=${String(since)}${reason ? `: ${reason}` : ''}`,
        { status: 400, error, reason },
      ),
    });
    if (cursor.lastGoodSeq === undefined) throw new StopSignal('bad_request');
    cursor.since = cursor.lastGoodSeq;
    cursor.lastGoodSeq = undefined;
    return { reason: 'bad_request', waitMs: 0 };
  }

  /**
   * A failure goes to `@OnError` (retry or stop). Without one: a feed failure retries after 60 s and
   * a throwing `@OnChange` stops the follower with what it threw. `failed` is the `@OnChange`'s
   * HANDLER_FAILED when the failure is a handler's (reported as `handler-failed`; `@OnError` gets
   * what the handler threw).
   */
  async failure(error: unknown, failed?: HandlerError): Promise<Next> {
    const { core } = this;
    core.life.emit(
      failed
        ? { type: 'handler-failed', kind: 'change', error: failed, attempt: 1 }
        : { type: 'feed-error', error },
    );
    const method = core.def.tables.error.match(error);
    if (method === undefined) {
      if (failed) throw new StopSignal(error);
      return { reason: 'retry', waitMs: DEFAULT_RETRY_MS + this.jitter() };
    }
    let result: unknown;
    try {
      result = await callHandler(core.def, core.instance, 'error', method, [error, core.state]);
    } catch (err) {
      throw new StopSignal(thrownBy(err)); // BAD_RETURN, or what @OnError threw
    }
    if (returnKind(result) === 'retry') {
      const r = result as RetryReturn<S>;
      core.state = deepFreeze(r.state);
      const waitMs =
        r.waitMs === undefined ? this.jitter() : r.waitMs === Infinity ? Infinity : r.waitMs + this.jitter();
      return { reason: 'retry', waitMs };
    }
    const r = result as StopReturn<S>;
    core.state = deepFreeze(r.state);
    throw new StopSignal(r.reason);
  }
}
