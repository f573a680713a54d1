import type { ReadTransaction, Transaction } from '../backend/types';
import { CallTimeoutError, DgenError, HandlerError, StoppedError } from '../errors';
import type { Action, HandlerReturn, NoreplyReturn, ReplyReturn, StopReturn } from '../returns';
import { runActions } from '../kernel/actions';
import { transactionTimedOut } from '../backend/common/transaction-deadline';
import { LIMITS } from '../backend/types';
import { CallChannel, toRecord } from './call-channel';
import { DurableQueue } from './durable-queue';
import type { HandledKind } from './events';
import { deepFreeze } from '../kernel/freeze';
import { findHandler, invokeHandler } from '../kernel/invoke';
import { noHandler } from '../kernel/no-handler';
import { LockRecords } from './lock-record';
import { delay, returnKindOf, type ServerContext } from './server-context';
import type { StoredState } from './state-storage';
import type { FromId } from './wire';
import { ContextAsks } from './context/handler-context';
import { settledIn, TimerView } from './context/timer-view';
import { noteAsked, writeAsked } from './context/apply';
import { traceOutside } from '../telemetry/spans';

export type Role = 'call' | 'cast' | 'info';
export type Result = HandlerReturn<unknown>;

/** Who a reply goes to: a durable waiting caller, a caller in this process, or nobody (a cast). */
export type ReplyTo = { kind: 'durable'; from: FromId } | { kind: 'local'; from: string } | { kind: 'none' };

/** What one handled message left to do after its transaction committed. */
export interface Outcome {
  result: Result;
  kind: HandledKind;
  msg: unknown;
  replyTo: ReplyTo;
  ms: number;
  /** Bytes of the reply written for a durable caller (batches stay well under the transaction limit). */
  replyBytes?: number;
  stamp?: Promise<Buffer>;
  /** What the handler asked of its context (written with its effects). */
  asks?: ContextAsks;
  /** The timers it was told of (ctx.cancelTimer): checked in the transaction that writes its effects. */
  view?: TimerView;
}

/** When a message may be handled outside the queue, and what to do instead (see `handleOutside`). */
export interface Guard<F> {
  holds: (tx: ReadTransaction) => Promise<boolean>;
  otherwise: (tx: Transaction) => F;
  instead?: () => Promise<F>;
}

type LockedResult = ReplyReturn<unknown> | NoreplyReturn<unknown> | StopReturn<unknown>;

/** One run of an `@OnLocked` handler: its result, or what it threw (then nothing of it is written). */
interface LockedRun {
  result?: LockedResult;
  failure?: Error;
  asks: ContextAsks;
  view: TimerView;
  ms: number;
}

/**
 * How one process handles a server's messages: the state it caches (by version), running a handler
 * inside a transaction, and what follows the commit — events, `@OnLocked`, actions, stop.
 */
export class Handling {
  private cached?: StoredState;
  private misses = 0;

  /** Consecutive cache misses: the consumer backs off while another process keeps writing. */
  get cacheMisses(): number {
    return this.misses;
  }

  constructor(private readonly ctx: ServerContext) {}

  /** The state just written by `init`, as of the commit `version`. */
  remember(state: unknown, version: Buffer): void {
    this.cached = { state, version };
  }

  forget(): void {
    this.cached = undefined;
  }

  /** The state this process last saw (its cache), else as stored now; undefined if it cannot be read. */
  async lastKnownState(read: () => Promise<StoredState | undefined>): Promise<unknown> {
    if (this.cached) return this.cached.state;
    return (await read().catch(() => undefined))?.state;
  }

  /**
   * Handles one message outside the write lock, as the consumer does with a batch: reads the state from
   * a snapshot, runs the handler, then in a transaction checks that the state version is unchanged and
   * writes the effects (else starts over). With `guard`, the message may only be handled while
   * `guard(tx)` holds (checked in both); when it does not, `otherwise(tx)` runs in the transaction
   * instead — or, when the snapshot shows already that it does not, in `instead` (a transaction that
   * reads nothing: a serializable read of the guard's keys would make it conflict with their writers,
   * e.g. a queue's pop counter with every batch of its consumer). The caller calls `finish` on the outcome.
   */
  handleOutside(role: Role, msg: unknown, replyTo: ReplyTo, kind: HandledKind): Promise<{ outcome: Outcome }>;
  handleOutside<F>(
    role: Role,
    msg: unknown,
    replyTo: ReplyTo,
    kind: HandledKind,
    guard: Guard<F>,
  ): Promise<{ outcome: Outcome } | { otherwise: F }>;
  async handleOutside<F>(
    role: Role,
    msg: unknown,
    replyTo: ReplyTo,
    kind: HandledKind,
    guard?: Guard<F>,
  ): Promise<{ outcome: Outcome } | { otherwise: F }> {
    const method = findHandler(this.ctx.def, role, msg);
    if (!method) throw noHandler(this.ctx.def.ctor.name, role, msg);
    const began = Date.now(); // ops: telemetry
    for (;;) {
      const seen = await this.ctx.tenant.read(async (tx) =>
        guard && !(await guard.holds(tx)) ? undefined : this.load(tx),
      );
      if (!seen && guard?.instead) return { otherwise: await guard.instead() };
      const o =
        seen && (await this.compute(role, method, msg, replyTo, kind, seen.state).catch(this.reported(kind)));
      if (o && o.ms > LIMITS.transactionMs) throw transactionTimedOut(LIMITS.transactionMs);
      const r = await this.ctx.tenant.transact(async (tx) => {
        if (guard && !(await guard.holds(tx))) return { otherwise: guard.otherwise(tx) };
        if (!seen || !o) return 'stale' as const;
        const version = await this.ctx.state.readVersion(tx);
        if (!version || !version.equals(seen.version)) return 'stale' as const;
        if (o.view?.hasReads && !(await o.view.holds(tx))) return 'stale' as const; // ctx.cancelTimer's answer
        o.replyBytes = await this.writeEffects(tx, o);
        o.stamp = this.applyResult(tx, seen.state, o.result);
        return { outcome: o };
      });
      if (r === 'stale') continue;
      if ('outcome' in r && r.outcome) traceOutside(this.ctx, began, r.outcome); // ops hook: telemetry
      return r;
    }
  }

  /** Reports a handler's failure on events$ (as the consumer and the follower do), then passes it on. */
  private reported(kind: HandledKind): (error: unknown) => never {
    return (error) => {
      if (error instanceof HandlerError) this.ctx.emit({ type: 'handler-failed', kind, error, attempt: 1 });
      throw error;
    };
  }

  /** A TimerView reading from snapshots of its own, for handlers that run outside a transaction. */
  timerView(): TimerView {
    return new TimerView(this.ctx.keys, (fn) => this.ctx.tenant.read(fn));
  }

  /**
   * Runs `method` on `state`, outside any transaction: the outcome, whose effects are not written yet.
   * `view`: the timers as the batch's handlers see them (one per batch; its reads are checked at commit).
   */
  async compute(
    role: Role,
    method: string | symbol,
    msg: unknown,
    replyTo: ReplyTo,
    kind: HandledKind,
    state: unknown,
    view: TimerView = this.timerView(),
  ): Promise<Outcome> {
    const started = performance.now();
    const asks = new ContextAsks(this.ctx.timers.clock, this.ctx.tenant, view);
    const args =
      role === 'call'
        ? [msg, replyTo.kind === 'none' ? undefined : replyTo.from, state, asks]
        : [msg, state, asks];
    const result = await settledIn(
      view,
      invokeHandler<Result>(this.ctx.def, this.ctx.instance, role, method, args),
    );
    deepFreeze(result.state);
    return { result, kind, msg, replyTo, ms: performance.now() - started, asks, view };
  }

  /** Writes an outcome's lock and reply (not its state) into `tx`; returns the reply's bytes. */
  /** `marker`: the durable caller's pending marker, read ahead (see CallChannel.answer). */
  async writeEffects(tx: Transaction, o: Outcome, marker?: Promise<Buffer | undefined>): Promise<number> {
    await writeAsked(tx, this.ctx, o.asks, o.result);
    const kindOf = returnKindOf(o.result);
    if (kindOf === 'lock') LockRecords.take(tx, this.ctx.keys, this.ctx.owner, this.ctx.opts.lockLeaseMs);
    if (o.replyTo.kind !== 'durable') return 0;
    if (kindOf === 'reply')
      return CallChannel.answer(
        tx,
        this.ctx.keys,
        o.replyTo.from,
        { ok: true, value: (o.result as ReplyReturn<unknown>).value },
        marker,
      );
    if (kindOf === 'stop')
      await CallChannel.answer(tx, this.ctx.keys, o.replyTo.from, toRecord(new StoppedError()), marker);
    return 0;
  }

  /** Writes the new state if it changed, returning the commit's versionstamp promise. */
  applyResult(tx: Transaction, previous: unknown, result: Result): Promise<Buffer> | undefined {
    const next = deepFreeze(result.state);
    if (next === previous) return undefined;
    this.ctx.state.write(tx, previous, next);
    return this.stampOf(tx);
  }

  stampOf(tx: Transaction): Promise<Buffer> {
    const p = tx.getVersionstamp();
    p.catch(() => undefined); // an aborted attempt rejects it; only the committed one is used
    return p;
  }

  /** The cached state (when caching), as of the last commit of this process that wrote it. */
  get cachedState(): StoredState | undefined {
    return this.ctx.opts.cache ? this.cached : undefined;
  }

  /** Whether `load` compares a cached state's version (which a caller may read ahead, see `load`). */
  get hasCached(): boolean {
    return this.ctx.opts.cache && this.cached !== undefined;
  }

  /**
   * The current state: the cached one while the stored version is unchanged, else read. `known`:
   * the stored version, read by the caller along with its other reads (one round trip less remotely).
   */
  async load(tx: ReadTransaction, known?: Promise<Buffer | undefined>): Promise<StoredState> {
    if (this.ctx.opts.cache && this.cached) {
      const version = await (known ?? this.ctx.state.readVersion(tx));
      if (version && version.equals(this.cached.version)) {
        this.misses = 0;
        return this.cached;
      }
      this.misses++;
    }
    const stored = await this.ctx.state.read(tx);
    if (!stored)
      throw new DgenError(
        'NOT_FOUND',
        `server ${JSON.stringify(this.ctx.tuid)} has no stored state (was it killed?)`,
      );
    deepFreeze(stored.state);
    return stored;
  }

  /** After commit: cache, events, then the lock handler, actions and stop, in that order. */
  async finish(o: Outcome): Promise<unknown> {
    const kindOf = returnKindOf(o.result);
    if (o.stamp) await this.committed(o.result.state, o.stamp);
    noteAsked(this.ctx, o.asks);
    this.ctx.emit({ type: 'handled', kind: o.kind, ms: o.ms });
    if (kindOf === 'lock') return this.runLocked(o);
    const actions = 'actions' in o.result ? (o.result.actions as ReadonlyArray<Action<unknown>>) : [];
    await runActions(actions, o.result.state, (error) => this.ctx.emit({ type: 'action-failed', error }));
    if (kindOf === 'stop') void this.ctx.stop((o.result as StopReturn<unknown>).reason);
    return kindOf === 'reply' ? (o.result as ReplyReturn<unknown>).value : undefined;
  }

  /** A state write committed as `stamp`: cache the state at that version and report the commit. */
  private async committed(state: unknown, stamp: Promise<Buffer>): Promise<void> {
    const version = await stamp;
    // A backend that cannot tell the stamp (PostgreSQL after a commit whose outcome it had to look up)
    // leaves the cache empty: the next message reads the state instead of comparing with nothing.
    if (!Buffer.isBuffer(version)) {
      this.cached = undefined;
      return;
    }
    if (this.ctx.opts.cache) this.cached = { state, version };
    this.ctx.emit({ type: 'committed', version: version.toString('hex') });
  }

  /** A local (inline or priority) call: finish, then resolve with the reply or wait for a noreply's timeout. */
  async finishLocal(o: Outcome, timeout: number): Promise<unknown> {
    const before = returnKindOf(o.result);
    const value = await this.finish(o);
    const locked =
      before === 'lock' ? (value as { replied: boolean; value?: unknown } | undefined) : undefined;
    if (before === 'reply' || locked?.replied) return locked ? locked.value : value;
    if (before === 'stop' && this.ctx.isStopped) throw new StoppedError();
    // noreply: the caller waits until its timeout, as gen_server.
    await delay(timeout);
    throw new CallTimeoutError(
      'CALL_TIMEOUT',
      `call got no reply within ${timeout} ms (the handler returned noreply)`,
    );
  }

  /**
   * `lock(state)` committed: run `@OnLocked` outside any transaction, renewing the lease while it works,
   * then commit its result and release the lock — also when it throws.
   */
  private async runLocked(o: Outcome): Promise<{ replied: boolean; value?: unknown }> {
    this.ctx.emit({ type: 'lock-acquired' });
    const ev =
      o.replyTo.kind === 'none' ? { kind: 'cast' as const } : { kind: 'call' as const, from: o.replyTo.from };
    const renew = setInterval(
      () =>
        void this.ctx.tenant
          .transact((tx) => LockRecords.renew(tx, this.ctx.keys, this.ctx.owner, this.ctx.opts.lockLeaseMs))
          .catch(() => undefined),
      Math.max(10, this.ctx.opts.lockLeaseMs / 3),
    );
    let outcome: { replied: boolean; value?: unknown } = { replied: false };
    try {
      const method = findHandler(this.ctx.def, 'locked', o.msg);
      let run: LockedRun;
      let stamp: { stampP?: Promise<Buffer> } | 'stale';
      // Again only when a ctx.cancelTimer answer it was given no longer holds (see timer-view.ts).
      do {
        run = await this.invokeLocked(method, ev, o);
        const { result, failure, asks, view } = run;
        const kindOf = result && returnKindOf(result);
        stamp = await this.ctx.tenant.transact(async (tx) => {
          if (result && view.hasReads && !(await view.holds(tx))) return 'stale' as const;
          let stampP: Promise<Buffer> | undefined;
          if (result) {
            const current = await this.load(tx);
            stampP = this.applyResult(tx, current.state, result) ?? undefined;
            await writeAsked(tx, this.ctx, asks, result);
          }
          if (o.replyTo.kind === 'durable') {
            if (failure) await CallChannel.answer(tx, this.ctx.keys, o.replyTo.from, toRecord(failure));
            else if (kindOf === 'reply')
              await CallChannel.answer(tx, this.ctx.keys, o.replyTo.from, {
                ok: true,
                value: (result as ReplyReturn<unknown>).value,
              });
          }
          if (await LockRecords.release(tx, this.ctx.keys, this.ctx.owner))
            DurableQueue.notify(tx, this.ctx.keys);
          return { stampP };
        });
      } while (stamp === 'stale');
      const { result, failure, asks, ms } = run;
      const kindOf = result && returnKindOf(result);
      if (stamp.stampP && result) await this.committed(result.state, stamp.stampP);
      if (result) noteAsked(this.ctx, asks);
      this.ctx.emit({ type: 'handled', kind: 'locked', ms });
      if (failure && o.replyTo.kind === 'local') throw failure;
      if (result) {
        await runActions(result.actions, result.state, (error) =>
          this.ctx.emit({ type: 'action-failed', error }),
        );
        if (kindOf === 'stop') void this.ctx.stop((result as StopReturn<unknown>).reason);
        if (kindOf === 'reply') outcome = { replied: true, value: (result as ReplyReturn<unknown>).value };
      }
    } finally {
      clearInterval(renew);
      // Also when committing the result failed: never leave the lock to its lease.
      await this.ctx.tenant
        .transact(async (tx) => {
          if (await LockRecords.release(tx, this.ctx.keys, this.ctx.owner))
            DurableQueue.notify(tx, this.ctx.keys);
        })
        .catch(() => undefined);
      this.ctx.emit({ type: 'lock-released' });
    }
    return outcome;
  }

  /** Runs `@OnLocked` once, outside any transaction; a failure is reported and kept, not thrown. */
  private async invokeLocked(
    method: string | symbol | undefined,
    ev: { kind: 'cast' } | { kind: 'call'; from: unknown },
    o: Outcome,
  ): Promise<LockedRun> {
    const started = performance.now();
    const view = this.timerView();
    const asks = new ContextAsks(this.ctx.timers.clock, this.ctx.tenant, view);
    try {
      if (!method) throw noHandler(this.ctx.def.ctor.name, 'locked', o.msg);
      const result = await settledIn(
        view,
        invokeHandler<LockedResult>(this.ctx.def, this.ctx.instance, 'locked', method, [
          ev,
          o.msg,
          o.result.state,
          asks,
        ]),
      );
      if (returnKindOf(result) === 'reply' && ev.kind === 'cast')
        throw new HandlerError(
          'BAD_RETURN',
          `${this.ctx.def.ctor.name}.${String(method)} returned reply(…) for a cast`,
        );
      return { result, asks, view, ms: performance.now() - started };
    } catch (error) {
      this.ctx.emit({ type: 'handler-failed', kind: 'locked', error, attempt: 1 });
      return { failure: error as Error, asks, view, ms: performance.now() - started };
    }
  }
}
