import type { Observable } from 'rxjs';
import { StoppedError } from '../errors';
import { callTimeoutOf } from '../kernel/call-timeout';
import { deepFreeze } from '../kernel/freeze';
import { systemClock, type Clock } from '../kernel/clock';
import { Lifecycle } from '../kernel/lifecycle';
import { PendingCalls } from '../kernel/pending-calls';
import type { ClassDefinition } from '../registry/class-definition';
import type { Seq } from './change-row';
import type { Checkpoint, CheckpointStore } from './checkpoint-store';
import { ConnectionPolicy, type Next } from './connection-policy';
import { replacedReason, UNREACHABLE } from './db-replaced';
import type { ResolvedDb } from './db-target';
import { FeedConnection } from './feed-connection';
import { FeedCursor } from './feed-cursor';
import { FeedError, parseCouchError } from './feed-error';
import { FeedReader } from './feed-reading';
import { buildFeedRequest } from './feed-request';
import type { ResolvedOptions } from './follow-options';
import { StopSignal, type FollowerCore } from './follower-core';
import type { FollowerEvent } from './follower-events';
import type { CallFrom, FollowerRef } from './follower-ref';
import { registerFollowerMetrics, trackFollower } from './follower-telemetry';
import { IdleTimeout } from './idle-timeout';
import { MessageLoop } from './message-loop';
import { RowDispatch } from './row-dispatch';

export { DEFAULT_RETRY_MS } from './connection-policy';

const DEFAULT_CALL_TIMEOUT_MS = 5_000;

/** A read or connect failure of the HTTP connection itself (never a handler's error). */
class ConnectionLost {
  constructor(readonly cause: unknown) {}
}

export interface FollowerSetup<S> {
  readonly def: ClassDefinition;
  readonly instance: object;
  readonly state: S;
  readonly db: ResolvedDb;
  readonly options: ResolvedOptions;
  /** Where to resume (a checkpoint's seq, or `options.since`). */
  readonly since: Seq | undefined;
  /** Runs `@Init` again: where a follower starts over when its database was replaced. */
  readonly restart: () => Promise<{ readonly state: S; readonly since: Seq | undefined }>;
  /** The checkpoint resumed from, if any (its database is checked before the first connection, as
   * before every reconnection). */
  readonly resumed?: Checkpoint<S>;
  readonly store?: CheckpointStore;
  readonly callTimeout?: number;
  /** Where idle timeouts take the time from (the system clock by default). */
  readonly clock?: Clock;
}

/**
 * One running follower: a single loop that connects, reads the feed on demand, hands each row to
 * `@OnChange`, serves calls, casts and infos in between (never at the same time as a handler), and
 * decides after every ended connection when to connect again. The parts: the message loop
 * (message-loop.ts), reading the feed (feed-reading.ts), dispatching rows (row-dispatch.ts), when to
 * reconnect (connection-policy.ts) and where it is in the feed (feed-cursor.ts).
 */
export class FollowerProcess<S> {
  private readonly core: FollowerCore<S>;
  private readonly loop: MessageLoop<S>;
  private readonly cursor: FeedCursor;
  private readonly policy: ConnectionPolicy<S>;
  private readonly reader: FeedReader<S>;
  /** Check, before the next connection, that the database is still the one `since` came from. */
  private verifyDb: boolean;
  private inSession = false;
  private finished = false;
  private readonly callTimeout: number;
  /** Leaves the follower lag gauge (telemetry). */
  private untrack = (): void => undefined;

  readonly done: Promise<unknown>;
  readonly events$: Observable<FollowerEvent>;
  /** The public face handed to callers (methods bound, internals hidden). */
  readonly ref: FollowerRef<S>;

  constructor(private readonly setup: FollowerSetup<S>) {
    const life = new Lifecycle<FollowerEvent>();
    this.core = {
      def: setup.def,
      instance: setup.instance,
      state: deepFreeze(setup.state),
      life,
      calls: new PendingCalls(),
      idle: new IdleTimeout(setup.clock ?? systemClock, () =>
        this.loop.push({ kind: 'info', msg: 'timeout' }),
      ),
    };
    this.loop = new MessageLoop(this.core);
    this.cursor = new FeedCursor(setup.since, setup.resumed?.last, setup.store);
    this.policy = new ConnectionPolicy(this.core, setup.db.url, setup.options.jitterMs);
    const rows = new RowDispatch(this.core, this.cursor);
    this.reader = new FeedReader(
      this.core,
      this.cursor,
      rows,
      this.policy,
      {
        read: (conn) => this.read(conn),
        serveQueued: () => this.loop.serveQueued(),
      },
      setup.options.maxLineBytes,
      setup.db,
    );
    this.verifyDb = setup.resumed !== undefined;
    this.callTimeout = setup.callTimeout ?? DEFAULT_CALL_TIMEOUT_MS;
    this.done = life.done;
    this.events$ = life.events$ as Observable<FollowerEvent>; // one view: the ref hands out this one
    const ref = {
      call: <R>(msg: unknown, options?: { timeout?: number }) => this.call(msg, options) as Promise<R>,
      cast: (msg: unknown) => this.cast(msg),
      send: (info: unknown) => this.send(info),
      stop: (reason?: unknown) => this.stop(reason),
      retryNow: () => this.retryNow(),
      readState: () => this.readState(),
      lastSeq: undefined as Seq | undefined,
      events$: this.events$,
      done: this.done,
    };
    Object.defineProperty(ref, 'lastSeq', { get: () => this.cursor.since, enumerable: true });
    this.ref = Object.freeze(ref);
  }

  /** Starts the loop (in the background; `done` settles when it ends). */
  start(): void {
    registerFollowerMetrics();
    this.untrack = trackFollower({
      cls: this.core.def.name,
      db: this.setup.db,
      lastSeq: () => this.cursor.since,
    });
    void this.run();
  }

  // ---- the public face -------------------------------------------------------------------------

  private get closed(): boolean {
    return this.finished || this.loop.stopping;
  }

  private call(msg: unknown, options?: { timeout?: number }): Promise<unknown> {
    if (this.closed) return Promise.reject(new StoppedError('follower'));
    let timeout: number;
    try {
      timeout = callTimeoutOf(options, this.callTimeout);
    } catch (err) {
      return Promise.reject(err);
    }
    const busy = 'the follower may be busy in a slow handler — raise { timeout } or check the handler';
    return this.core.calls.open(
      msg,
      timeout,
      (id) => {
        const from: CallFrom = Object.freeze({
          id,
          reply: (value: unknown) => this.core.calls.reply(id, value),
        });
        this.loop.push({ kind: 'call', msg, from });
      },
      busy,
    );
  }

  private cast(msg: unknown): Promise<void> {
    if (this.closed) return Promise.reject(new StoppedError('follower'));
    this.loop.push({ kind: 'cast', msg });
    return Promise.resolve();
  }

  private send(info: unknown): void {
    if (this.closed) throw new StoppedError('follower');
    this.loop.push({ kind: 'info', msg: info });
  }

  /** Idempotent, as a durable server's: a second stop (or one after the end) resolves once stopped. */
  private stop(reason: unknown = 'normal'): Promise<void> {
    if (!this.finished) this.loop.requestStop(reason);
    return this.done.then(() => undefined);
  }

  private retryNow(): void {
    if (this.closed) throw new StoppedError('follower');
    if (this.inSession) return; // connected (or connecting): nothing to skip, as ICouch
    this.loop.requestRetryNow();
  }

  private readState(): Promise<S> {
    if (this.finished) return Promise.reject(new StoppedError('follower'));
    return Promise.resolve(this.core.state);
  }

  // ---- the loop --------------------------------------------------------------------------------

  private async run(): Promise<void> {
    let reason: unknown;
    try {
      let next: Next | undefined;
      for (;;) {
        if (next && next.reason !== 'end') {
          this.core.life.emit({
            type: 'reconnecting',
            reason: next.reason,
            waitMs: next.waitMs,
            since: this.cursor.since,
          });
          this.verifyDb = true; // a server restart is when a database may have been replaced
        }
        if (next) await this.loop.pause(next.waitMs);
        next = await this.session();
      }
    } catch (err) {
      reason = err instanceof StopSignal ? err.reason : err;
    }
    await this.finish(reason);
  }

  private async finish(reason: unknown): Promise<void> {
    this.loop.requestStop(reason);
    try {
      await this.cursor.flush(this.core);
    } catch {
      // already reported on events$ (checkpoint-failed); stopping anyway
    }
    this.finished = true;
    this.core.idle.reset();
    this.untrack();
    this.core.calls.failAll(() => new StoppedError('follower'));
    this.loop.clear();
    await this.core.life.end(reason, this.core.def, this.core.instance, () => this.core.state);
  }

  /** One connection, from request to its end; returns when (and why) to connect again. */
  private async session(): Promise<Next> {
    if (this.verifyDb) {
      const next = await this.checkReplaced();
      if (next) return next;
    }
    const { db, options } = this.setup;
    const since = this.cursor.since;
    const conn = new FeedConnection(buildFeedRequest(db, options, since), options.heartbeat * 2);
    this.inSession = true;
    this.loop.connecting();
    let answered = false;
    try {
      const head = await this.loop.serveWhile(
        conn.open().catch((err: unknown) => Promise.reject(new ConnectionLost(err))),
      );
      answered = true;
      if (head.status === 400) return this.policy.badRequest(this.cursor, since, head.body);
      if (head.status !== 200) {
        const { error, reason } = parseCouchError(head.body);
        return await this.policy.failure(
          new FeedError(
            'status',
            `${db.url}/_changes answered HTTP ${head.status}${error ? ` ${error}` : ''}${reason ? `: ${reason}` : ''}`,
            { status: head.status, error, reason },
          ),
        );
      }
      this.policy.answered();
      if (since !== undefined) this.cursor.lastGoodSeq = since;
      this.core.life.emit({ type: 'connected', feed: options.feed, since });
      return options.feed === 'continuous'
        ? await this.reader.continuous(conn)
        : await this.reader.longpoll(conn);
    } catch (err) {
      if (!(err instanceof ConnectionLost)) throw err;
      return await this.policy.lost(err.cause, answered, conn.silent);
    } finally {
      conn.close();
      this.inSession = false;
    }
  }

  /** The next chunk, serving messages while waiting for it. */
  private read(conn: FeedConnection): Promise<Buffer | null> {
    return this.loop.serveWhile(conn.read().catch((err: unknown) => Promise.reject(new ConnectionLost(err))));
  }

  /**
   * Before resuming at a seq read from an earlier database of the same name (deleted and created
   * again), start over: `@Init` runs again for a fresh state and `since`. An `@OnError` may stop
   * instead (the stored checkpoint is left as it was); without one it starts over at once.
   */
  private async checkReplaced(): Promise<Next | undefined> {
    const { db, options } = this.setup;
    const mark = this.cursor.mark;
    if (mark === undefined && this.cursor.since === options.since) {
      this.verifyDb = false; // nothing read from this database yet: starting over would change nothing
      return undefined;
    }
    const why = await this.loop.serveWhile(replacedReason(db, this.cursor.since, mark, options.heartbeat));
    if (why === UNREACHABLE) return undefined; // the connection will fail (and be handled) too
    this.verifyDb = false;
    if (why === undefined) return undefined;
    const err = new FeedError('replaced', `${db.url} ${why}: it is a new database; starting over`);
    let fresh: Awaited<ReturnType<FollowerSetup<S>['restart']>>;
    try {
      fresh = await this.loop.serveWhile(this.setup.restart());
    } catch (e) {
      if (e instanceof StopSignal) throw e;
      this.core.life.emit({ type: 'feed-error', error: err });
      throw new StopSignal(e); // @Init threw, or returned stop(...): as it would at Runtime.start
    }
    this.core.state = deepFreeze(fresh.state);
    this.cursor.restart(fresh.since);
    if (this.core.def.tables.error.match(err) !== undefined) return this.policy.failure(err);
    this.core.life.emit({ type: 'feed-error', error: err });
    return undefined;
  }
}
