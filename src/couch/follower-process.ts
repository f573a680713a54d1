import { Subject, type Observable } from 'rxjs';
import { getHandlerMeta } from '../decorators/metadata';
import { BadArgumentError, CallTimeoutError, DgenError, HandlerError, StoppedError } from '../errors';
import { runActions } from '../kernel/actions';
import { deepFreeze } from '../kernel/freeze';
import { noHandler } from '../kernel/no-handler';
import { runTerminate } from '../kernel/terminate';
import type { ClassDefinition } from '../registry/class-definition';
import { describeMessage } from '../registry/dispatch-table';
import {
  returnKind,
  type Action,
  type NoreplyReturn,
  type OkReturn,
  type ReplyReturn,
  type StopReturn,
} from '../returns';
import type { ChangeRow, Seq } from './change-row';
import type { Checkpoint, CheckpointStore } from './checkpoint-store';
import { ContinuousParser, tooLong } from './continuous-parser';
import { replacedReason, UNREACHABLE, markOf, type RowMark } from './db-replaced';
import type { ResolvedDb } from './db-target';
import { FeedConnection } from './feed-connection';
import { describeError, FeedError, isConnectFailure, parseCouchError } from './feed-error';
import type { FeedItem } from './feed-item';
import { buildFeedRequest } from './feed-request';
import type { ResolvedOptions } from './follow-options';
import type { ErrorSource, FollowerEvent, ReconnectReason } from './follower-events';
import type { CallFrom, FollowerRef } from './follower-ref';
import { invoke, invoke3 } from './invoke';
import { longpollItems } from './longpoll-answer';
import { Mailbox } from './mailbox';
import type { RetryReturn } from './returns';

/** Without `@OnError`, a feed failure retries after this long (as ICouch). */
export const DEFAULT_RETRY_MS = 60_000;
/** This many closes in a row before any answer count as a connection failure (goes to `@OnError`). */
const CLOSED_BEFORE_ANSWER_LIMIT = 3;
const DEFAULT_CALL_TIMEOUT_MS = 5_000;

type Message =
  | { readonly kind: 'call'; readonly msg: unknown; readonly from: CallFrom }
  | { readonly kind: 'cast'; readonly msg: unknown }
  | { readonly kind: 'info'; readonly msg: unknown };

interface PendingCall {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  timer?: NodeJS.Timeout;
}

/** What to do after a connection ends: wait this long, then connect again. */
interface Next {
  readonly reason: ReconnectReason;
  readonly waitMs: number;
}

/** Unwinds the process loop: the follower stops with `reason`. */
class StopSignal {
  constructor(readonly reason: unknown) {}
}

/** A read or connect failure of the HTTP connection itself (never a handler's error). */
class ConnectionLost {
  constructor(readonly cause: unknown) {}
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

const isNewlines = (buf: Buffer): boolean => {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0x0a && buf[i] !== 0x0d) return false;
  return buf.length > 0;
};

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
}

/**
 * One running follower: a single loop that connects, reads the feed on demand, hands each row to
 * `@OnChange`, serves calls, casts and infos in between (never at the same time as a handler), and
 * decides after every ended connection when to connect again.
 */
export class FollowerProcess<S> {
  private state: S;
  private since: Seq | undefined;
  /** The since of the last request the server accepted (ICouch's "last known good" seq). */
  private lastGoodSeq: Seq | undefined;
  private dirty = false;
  /** The last row handled, and before any, the checkpoint's: stored with each checkpoint. */
  private lastRow: ChangeRow | undefined;
  private resumedMark: RowMark | undefined;
  /** Check, before the next connection, that the database is still the one `since` came from. */
  private verifyDb: boolean;
  private readonly restart: FollowerSetup<S>['restart'];
  private closedBeforeAnswer = 0;
  private inSession = false;
  private retryNowRequested = false;
  private stopRequest: { reason: unknown } | undefined;
  private finished = false;
  private readonly mailbox = new Mailbox<Message>();
  private readonly calls = new Map<number, PendingCall>();
  private nextCallId = 1;
  private readonly subject = new Subject<FollowerEvent>();
  private resolveDone!: (reason: unknown) => void;
  private readonly def: ClassDefinition;
  private readonly instance: object;
  private readonly db: ResolvedDb;
  private readonly options: ResolvedOptions;
  private readonly store?: CheckpointStore;
  private readonly callTimeout: number;
  private readonly changeHasTags: boolean;

  readonly done: Promise<unknown>;
  readonly events$: Observable<FollowerEvent>;
  /** The public face handed to callers (methods bound, internals hidden). */
  readonly ref: FollowerRef<S>;

  constructor(setup: FollowerSetup<S>) {
    this.def = setup.def;
    this.instance = setup.instance;
    this.state = deepFreeze(setup.state);
    this.db = setup.db;
    this.options = setup.options;
    this.since = setup.since;
    this.store = setup.store;
    this.restart = setup.restart;
    this.resumedMark = setup.resumed?.last;
    this.verifyDb = setup.resumed !== undefined;
    this.callTimeout = setup.callTimeout ?? DEFAULT_CALL_TIMEOUT_MS;
    this.changeHasTags = getHandlerMeta(this.def.ctor).some(
      (h) => h.role === 'change' && h.tag !== undefined,
    );
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.events$ = this.subject.asObservable();
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
    Object.defineProperty(ref, 'lastSeq', { get: () => this.since, enumerable: true });
    this.ref = Object.freeze(ref);
  }

  /** Starts the loop (in the background; `done` settles when it ends). */
  start(): void {
    void this.run();
  }

  // ---- the public face -------------------------------------------------------------------------

  private call(msg: unknown, options?: { timeout?: number }): Promise<unknown> {
    if (this.finished || this.stopRequest) return Promise.reject(new StoppedError('follower'));
    if (options !== undefined && (typeof options !== 'object' || options === null))
      return Promise.reject(
        new BadArgumentError('BAD_ARGUMENT', 'call(msg, options): options must be { timeout? }'),
      );
    const timeout = options?.timeout ?? this.callTimeout;
    if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout <= 0)
      return Promise.reject(
        new BadArgumentError(
          'BAD_ARGUMENT',
          `call(msg, { timeout }): timeout must be a positive number of ms (got ${String(timeout)})`,
        ),
      );
    const id = this.nextCallId++;
    return new Promise((resolve, reject) => {
      const pending: PendingCall = { resolve, reject };
      if (timeout !== Infinity)
        pending.timer = setTimeout(() => {
          this.calls.delete(id);
          reject(
            new CallTimeoutError(
              'CALL_TIMEOUT',
              `call ${describeMessage(msg)} got no reply within ${timeout} ms; the follower may be busy in a slow handler — raise { timeout } or check the handler`,
            ),
          );
        }, timeout);
      this.calls.set(id, pending);
      const from: CallFrom = Object.freeze({ id, reply: (value: unknown) => this.reply(id, value) });
      this.mailbox.push({ kind: 'call', msg, from });
    });
  }

  private cast(msg: unknown): Promise<void> {
    if (this.finished || this.stopRequest) return Promise.reject(new StoppedError('follower'));
    this.mailbox.push({ kind: 'cast', msg });
    return Promise.resolve();
  }

  private send(info: unknown): void {
    if (this.finished || this.stopRequest) throw new StoppedError('follower');
    this.mailbox.push({ kind: 'info', msg: info });
  }

  /** Idempotent, as a durable server's: a second stop (or one after the end) resolves once stopped. */
  private stop(reason: unknown = 'normal'): Promise<void> {
    if (!this.stopRequest && !this.finished) this.stopRequest = { reason };
    this.mailbox.notify();
    return this.done.then(() => undefined);
  }

  private retryNow(): void {
    if (this.finished || this.stopRequest) throw new StoppedError('follower');
    if (this.inSession) return; // connected (or connecting): nothing to skip, as ICouch
    this.retryNowRequested = true;
    this.mailbox.notify();
  }

  private readState(): Promise<S> {
    if (this.finished) return Promise.reject(new StoppedError('follower'));
    return Promise.resolve(this.state);
  }

  private reply(id: number, value: unknown): void {
    const pending = this.calls.get(id);
    if (!pending) return; // timed out, or already answered
    this.calls.delete(id);
    if (pending.timer) clearTimeout(pending.timer);
    pending.resolve(value);
  }

  private failCall(id: number, err: unknown): void {
    const pending = this.calls.get(id);
    if (!pending) return;
    this.calls.delete(id);
    if (pending.timer) clearTimeout(pending.timer);
    pending.reject(err);
  }

  private emit(event: FollowerEvent): void {
    this.subject.next(event);
  }

  // ---- the loop --------------------------------------------------------------------------------

  private async run(): Promise<void> {
    let reason: unknown;
    try {
      let next: Next | undefined;
      for (;;) {
        if (next && next.reason !== 'end') {
          this.emit({ type: 'reconnecting', reason: next.reason, waitMs: next.waitMs, since: this.since });
          this.verifyDb = true; // a server restart is when a database may have been replaced
        }
        if (next) {
          await this.pause(next.waitMs);
        }
        next = await this.session();
      }
    } catch (err) {
      reason = err instanceof StopSignal ? err.reason : err;
    }
    await this.finish(reason);
  }

  private async finish(reason: unknown): Promise<void> {
    this.stopRequest ??= { reason };
    try {
      await this.flushCheckpoint();
    } catch (err) {
      // already reported on events$ by flushCheckpoint; stopping anyway
      void err;
    }
    this.finished = true;
    for (const id of [...this.calls.keys()]) this.failCall(id, new StoppedError('follower'));
    this.mailbox.clear();
    await runTerminate(
      this.def,
      this.instance,
      reason,
      () => this.state,
      (error) => this.emit({ type: 'error', error, during: 'terminate' }),
    );
    this.emit({ type: 'stopped', reason });
    this.subject.complete();
    this.resolveDone(reason);
  }

  /** One connection, from request to its end; returns when (and why) to connect again. */
  private async session(): Promise<Next> {
    if (this.verifyDb) {
      const next = await this.checkReplaced();
      if (next) return next;
    }
    const since = this.since;
    const conn = new FeedConnection(
      buildFeedRequest(this.db, this.options, since),
      this.options.heartbeat * 2,
    );
    this.inSession = true;
    this.retryNowRequested = false;
    let answered = false;
    try {
      const head = await this.serveWhile(
        conn.open().catch((err: unknown) => Promise.reject(new ConnectionLost(err))),
      );
      answered = true;
      if (head.status === 400) return this.badRequest(since, head.body);
      if (head.status !== 200) {
        const { error, reason } = parseCouchError(head.body);
        return await this.failure(
          new FeedError(
            'status',
            `${this.db.url}/_changes answered HTTP ${head.status}${error ? ` ${error}` : ''}${reason ? `: ${reason}` : ''}`,
            {
              status: head.status,
              error,
              reason,
            },
          ),
        );
      }
      this.closedBeforeAnswer = 0;
      if (since !== undefined) this.lastGoodSeq = since;
      this.emit({ type: 'connected', feed: this.options.feed, since });
      return this.options.feed === 'continuous' ? await this.continuous(conn) : await this.longpoll(conn);
    } catch (err) {
      if (!(err instanceof ConnectionLost)) throw err;
      if (conn.silent) return { reason: 'heartbeat', waitMs: this.jitter() };
      if (isConnectFailure(err.cause))
        return await this.failure(
          new FeedError('connection', `cannot connect to ${this.db.url}: ${describeError(err.cause)}`, {
            cause: err.cause,
          }),
        );
      if (!answered && ++this.closedBeforeAnswer > CLOSED_BEFORE_ANSWER_LIMIT) {
        this.closedBeforeAnswer = 0;
        return await this.failure(
          new FeedError(
            'connection',
            `${this.db.url} closed the connection before answering ${CLOSED_BEFORE_ANSWER_LIMIT + 1} times in a row: ${describeError(err.cause)}`,
            { cause: err.cause },
          ),
        );
      }
      return { reason: 'closed', waitMs: this.jitter() };
    } finally {
      conn.close();
      this.inSession = false;
    }
  }

  /** Reads a continuous feed line by line, handling each batch of rows as it arrives. */
  private async continuous(conn: FeedConnection): Promise<Next> {
    const parser = new ContinuousParser(this.options.maxLineBytes);
    let ended = false;
    for (;;) {
      const chunk = await this.read(conn);
      let items: FeedItem[];
      try {
        items = chunk === null ? parser.end() : parser.push(chunk);
      } catch (err) {
        await this.flushCheckpoint();
        return this.failure(err);
      }
      if (items.length > 0) {
        const next = await this.handleItems(items);
        if (next) return next;
        if (!ended) ended = items.some((i) => i.kind === 'last_seq');
      }
      if (chunk === null)
        return ended ? { reason: 'end', waitMs: 0 } : { reason: 'closed', waitMs: this.jitter() };
    }
  }

  /**
   * Reads a longpoll answer whole — one JSON body; the server may put heartbeat newlines inside it —
   * then handles its rows. Memory holds one answer, at most `maxLineBytes` of it.
   */
  private async longpoll(conn: FeedConnection): Promise<Next> {
    const parts: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = await this.read(conn);
      if (chunk === null) break;
      if (isNewlines(chunk)) this.emit({ type: 'heartbeat' });
      size += chunk.length;
      if (size > this.options.maxLineBytes)
        return this.failure(tooLong(this.options.maxLineBytes, 'an answer'));
      parts.push(chunk);
    }
    const items = longpollItems(Buffer.concat(parts));
    if (items instanceof FeedError) return this.failure(items);
    return (await this.handleItems(items)) ?? { reason: 'end', waitMs: 0 };
  }

  /** The next chunk, serving messages while waiting for it. */
  private read(conn: FeedConnection): Promise<Buffer | null> {
    return this.serveWhile(conn.read().catch((err: unknown) => Promise.reject(new ConnectionLost(err))));
  }

  /** Handles one batch; checkpoints after it. Returns a Next when the connection must end early. */
  private async handleItems(items: readonly FeedItem[]): Promise<Next | undefined> {
    for (const item of items) {
      if (this.mailbox.size > 0 || this.stopRequest) await this.drain();
      switch (item.kind) {
        case 'row': {
          let next = this.handleChange(item.row);
          if (next !== undefined && isThenable(next)) next = await next;
          if (next) {
            await this.flushCheckpoint();
            return next;
          }
          break;
        }
        case 'heartbeat':
          this.emit({ type: 'heartbeat' });
          break;
        case 'last_seq':
          this.advance(item.seq);
          break;
        case 'error':
          await this.flushCheckpoint();
          return this.failure(
            new FeedError(
              'error-row',
              `the feed reported ${item.error}${item.reason ? `: ${item.reason}` : ''}`,
              {
                error: item.error,
                reason: item.reason,
              },
            ),
          );
        case 'invalid':
          this.emit({ type: 'error', error: item.error, during: 'feed' });
          break;
      }
    }
    await this.flushCheckpoint();
    return undefined;
  }

  /** Synchronous when the handler is (no promise per row on the hot path). */
  private handleChange(row: ChangeRow): Next | undefined | Promise<Next | undefined> {
    const method = this.changeMethod(row);
    if (method === undefined) {
      this.advance(row.seq);
      this.lastRow = row;
      this.emit({ type: 'dropped', kind: 'change', msg: row });
      return undefined;
    }
    let result: unknown;
    try {
      result = invoke(this.instance, method, row, this.state);
    } catch (err) {
      return this.failure(err, 'change');
    }
    // a branded result (the usual, synchronous case) is never a promise: skip the thenable probe
    if (returnKind(result) === undefined && isThenable(result))
      return Promise.resolve(result).then(
        (settled) => this.changeHandled(method, row, settled),
        (err: unknown) => this.failure(err, 'change'),
      );
    return this.changeHandled(method, row, result);
  }

  /** Applies an @OnChange result: ok → next row; stop → StopSignal; anything else → BAD_RETURN. */
  private changeHandled(method: string | symbol, row: ChangeRow, result: unknown): undefined {
    const kind = returnKind(result);
    if (kind === 'ok' || kind === 'stop') {
      this.state = deepFreeze((result as OkReturn<S> | StopReturn<S>).state);
      this.advance(row.seq);
      this.lastRow = row;
      if (this.subject.observed) this.emit({ type: 'change', seq: row.seq, id: row.id, row });
      if (kind === 'stop') throw new StopSignal((result as StopReturn<S>).reason);
      return undefined;
    }
    throw new StopSignal(
      new HandlerError(
        'BAD_RETURN',
        `@OnChange ${String(method)} of ${this.def.name} must return ok(state) or stop(reason, state) (got ${describeMessage(result)})`,
      ),
    );
  }

  private changeMethod(row: ChangeRow): string | symbol | undefined {
    const table = this.def.tables.change;
    if (!this.changeHasTags) return table.match(undefined);
    const type = row.doc !== undefined && row.doc !== null ? (row.doc as { type?: unknown }).type : undefined;
    return typeof type === 'string' ? table.match(type) : table.match(row);
  }

  private advance(seq: Seq): void {
    if (seq === this.since) return; // e.g. an empty longpoll answer: nothing new to checkpoint
    this.since = seq;
    this.dirty = true;
  }

  /**
   * Before resuming at a seq read from an earlier database of the same name (deleted and created
   * again), start over: `@Init` runs again for a fresh state and `since`. An `@OnError` may stop
   * instead (the stored checkpoint is left as it was); without one it starts over at once.
   */
  private async checkReplaced(): Promise<Next | undefined> {
    const mark = this.lastRow ? markOf(this.lastRow) : this.resumedMark;
    if (mark === undefined && this.since === this.options.since) {
      this.verifyDb = false; // nothing read from this database yet: starting over would change nothing
      return undefined;
    }
    const why = await this.serveWhile(replacedReason(this.db, this.since, mark, this.options.heartbeat));
    if (why === UNREACHABLE) return undefined; // the connection will fail (and be handled) too
    this.verifyDb = false;
    if (why === undefined) return undefined;
    const err = new FeedError('replaced', `${this.db.url} ${why}: it is a new database; starting over`);
    let fresh: Awaited<ReturnType<FollowerSetup<S>['restart']>>;
    try {
      fresh = await this.serveWhile(this.restart());
    } catch (e) {
      if (e instanceof StopSignal) throw e;
      this.emit({ type: 'error', error: err, during: 'feed' });
      throw new StopSignal(e); // @Init threw, or returned stop(...): as it would at Runtime.start
    }
    this.state = deepFreeze(fresh.state);
    this.since = fresh.since;
    this.lastGoodSeq = this.lastRow = this.resumedMark = undefined;
    this.dirty = false;
    if (this.def.tables.error.match(err) !== undefined) return this.failure(err);
    this.emit({ type: 'error', error: err, during: 'feed' });
    return undefined;
  }

  private badRequest(since: Seq | undefined, body: string | undefined): Next {
    const { error, reason } = parseCouchError(body);
    this.emit({
      type: 'error',
      during: 'feed',
      error: new FeedError(
        'status',
        `${this.db.url}/_changes answered HTTP 400 for since=${String(since)}${reason ? `: ${reason}` : ''}`,
        {
          status: 400,
          error,
          reason,
        },
      ),
    });
    if (this.lastGoodSeq === undefined) throw new StopSignal('bad_request');
    this.since = this.lastGoodSeq;
    this.lastGoodSeq = undefined;
    return { reason: 'bad_request', waitMs: 0 };
  }

  /**
   * A failure goes to `@OnError` (retry or stop). Without one: a feed failure retries after 60 s and
   * a throwing `@OnChange` stops the follower with its error.
   */
  private async failure(error: unknown, during: ErrorSource = 'feed'): Promise<Next> {
    this.emit({ type: 'error', error, during });
    const method = this.def.tables.error.match(error);
    if (method === undefined) {
      if (during !== 'feed') throw new StopSignal(error);
      return { reason: 'retry', waitMs: DEFAULT_RETRY_MS + this.jitter() };
    }
    let result: unknown;
    try {
      result = invoke(this.instance, method, error, this.state);
      if (isThenable(result)) result = await result;
    } catch (err) {
      throw new StopSignal(err);
    }
    const kind = returnKind(result);
    if (kind === 'retry') {
      const r = result as RetryReturn<S>;
      this.state = deepFreeze(r.state);
      const waitMs =
        r.waitMs === undefined ? this.jitter() : r.waitMs === Infinity ? Infinity : r.waitMs + this.jitter();
      return { reason: 'retry', waitMs };
    }
    if (kind === 'stop') {
      this.state = deepFreeze((result as StopReturn<S>).state);
      throw new StopSignal((result as StopReturn<S>).reason);
    }
    throw new StopSignal(
      new HandlerError(
        'BAD_RETURN',
        `@OnError ${String(method)} of ${this.def.name} must return retry(state, waitMs?) or stop(reason, state) (got ${describeMessage(result)})`,
      ),
    );
  }

  private jitter(): number {
    return Math.floor(Math.random() * this.options.jitterMs);
  }

  /** Waits `ms` (Infinity: until retryNow) before the next connection, serving messages meanwhile. */
  private async pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let elapsed = ms <= 0;
    const timeUp =
      ms > 0 && ms !== Infinity
        ? new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              elapsed = true;
              resolve();
            }, ms);
          })
        : undefined;
    try {
      for (;;) {
        await this.drain();
        if (elapsed) return;
        if (this.retryNowRequested) {
          this.retryNowRequested = false;
          return;
        }
        await (timeUp ? Promise.race([timeUp, this.mailbox.wake()]) : this.mailbox.wake());
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Settles like `work`, handling messages (and honouring a stop) while it is pending. */
  private async serveWhile<T>(work: Promise<T>): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    const settled = work.then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    for (;;) {
      if (this.mailbox.size > 0 || this.stopRequest) await this.drain();
      if (outcome === undefined) await Promise.race([settled, this.mailbox.wake()]);
      if (outcome !== undefined) {
        if (outcome.ok) return outcome.value;
        throw outcome.error;
      }
    }
  }

  /** Handles every queued message; throws StopSignal when a stop was asked for. */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopRequest) throw new StopSignal(this.stopRequest.reason);
      const m = this.mailbox.shift();
      if (m === undefined) return;
      if (m.kind === 'call') await this.handleCall(m.msg, m.from);
      else await this.handleCastOrInfo(m.kind, m.msg);
    }
  }

  private async handleCall(msg: unknown, from: CallFrom): Promise<void> {
    const method = this.def.tables.call.match(msg);
    if (method === undefined) {
      this.failCall(from.id, noHandler(this.def.name, 'call', msg));
      return;
    }
    let result: unknown;
    try {
      result = invoke3(this.instance, method, msg, from, this.state);
      if (isThenable(result)) result = await result;
    } catch (err) {
      this.emit({ type: 'error', error: err, during: 'call' });
      this.failCall(
        from.id,
        new HandlerError('HANDLER_FAILED', `@OnCall ${String(method)} threw: ${describeError(err)}`, {
          cause: err,
        }),
      );
      return;
    }
    switch (returnKind(result)) {
      case 'reply': {
        const r = result as ReplyReturn<S>;
        this.state = deepFreeze(r.state);
        this.reply(from.id, r.value);
        await this.runActions(r.actions);
        return;
      }
      case 'noreply': {
        const r = result as NoreplyReturn<S>;
        this.state = deepFreeze(r.state);
        await this.runActions(r.actions);
        return;
      }
      case 'stop': {
        const r = result as StopReturn<S>;
        this.state = deepFreeze(r.state);
        await this.runActions(r.actions);
        throw new StopSignal(r.reason);
      }
      default: {
        const err = new HandlerError(
          'BAD_RETURN',
          `@OnCall ${String(method)} must return reply(value, state), noreply(state) or stop(reason, state) (got ${describeMessage(result)})`,
        );
        this.emit({ type: 'error', error: err, during: 'call' });
        this.failCall(from.id, err);
      }
    }
  }

  private async handleCastOrInfo(kind: 'cast' | 'info', msg: unknown): Promise<void> {
    const method = this.def.tables[kind].match(msg);
    if (method === undefined) {
      this.emit({ type: 'dropped', kind, msg });
      return;
    }
    let result: unknown;
    try {
      result = invoke(this.instance, method, msg, this.state);
      if (isThenable(result)) result = await result;
    } catch (err) {
      this.emit({ type: 'error', error: err, during: kind });
      return;
    }
    const k = returnKind(result);
    if (k === 'noreply' || k === 'stop') {
      const r = result as NoreplyReturn<S> | StopReturn<S>;
      this.state = deepFreeze(r.state);
      await this.runActions(r.actions);
      if (k === 'stop') throw new StopSignal((r as StopReturn<S>).reason);
      return;
    }
    this.emit({
      type: 'error',
      during: kind,
      error: new HandlerError(
        'BAD_RETURN',
        `@On${kind === 'cast' ? 'Cast' : 'Info'} ${String(method)} must return noreply(state) or stop(reason, state) (got ${describeMessage(result)})`,
      ),
    });
  }

  /** A handler's actions, awaited in order with the new state, as a durable server's ('halt' or a throw ends the rest). */
  private runActions(actions: ReadonlyArray<Action<S>>): Promise<void> {
    return runActions(actions, this.state, (error) => this.emit({ type: 'error', error, during: 'action' }));
  }

  /** Stores the last handled seq and the state, when they changed since the last checkpoint. */
  private async flushCheckpoint(): Promise<void> {
    if (!this.store || !this.dirty || this.since === undefined) return;
    this.dirty = false;
    const seq = this.since;
    try {
      await this.store.save(seq, this.state, this.lastRow ? markOf(this.lastRow) : this.resumedMark);
    } catch (err) {
      this.emit({ type: 'error', error: err, during: 'checkpoint' });
      throw new StopSignal(
        err instanceof DgenError
          ? err
          : new DgenError('BACKEND_UNAVAILABLE', `checkpoint failed: ${describeError(err)}`, { cause: err }),
      );
    }
    this.emit({ type: 'checkpointed', seq });
  }
}
