import { randomUUID } from 'node:crypto';
import { Subject, concatMap, defer, type Subscription } from 'rxjs';
import type { Tenant, Transaction, Watch } from '../backend/types';
import { CallTimeoutError, DgenError, HandlerError, StoppedError } from '../errors';
import type { ClassDefinition } from '../registry/class-definition';
import {
  returnKind,
  type Action,
  type HandlerReturn,
  type NoreplyReturn,
  type ReplyReturn,
  type StopReturn,
  type Tuid,
} from '../returns';
import { runActions } from './actions';
import { CallChannel } from './call-channel';
import { BATCH_MS, BatchWindow, type HeadItem } from './batch-window';
import { DurableQueue } from './durable-queue';
import type { HandledKind, ServerEvent } from './events';
import { deepFreeze } from './freeze';
import { findHandler, invokeHandler, NoHandlerError } from './invoke';
import { LockRecords } from './lock-record';
import type { ResolvedOptions } from './options';
import { ServerKeys } from './server-keys';
import type { StateStorage, StoredState } from './state-storage';
import {
  decodeWire,
  encodeWire,
  type DeadLetter,
  type FromId,
  type QueueItem,
  type ReplyRecord,
} from './wire';

type Role = 'call' | 'cast' | 'info';
/** A queue item no handler takes: answered with NO_HANDLER (a call) or dead-lettered (a cast). */
type Skipped = { skipped: Error; msg: unknown; call: boolean };
type Result = HandlerReturn<unknown>;

/** Who a reply goes to: a durable waiting caller, a caller in this process, or nobody (a cast). */
type ReplyTo = { kind: 'durable'; from: FromId } | { kind: 'local'; from: string } | { kind: 'none' };

/** What one handled message left to do after its transaction committed. */
interface Outcome {
  result: Result;
  kind: HandledKind;
  msg: unknown;
  replyTo: ReplyTo;
  ms: number;
  stamp?: Promise<Buffer>;
}

/** Lock owner ids: one random id per process, then a counter (a flat string, cheaper than a UUID each). */
const PROCESS_ID = randomUUID();
let owners = 0;
const nextOwnerId = (): string => `${PROCESS_ID}/${++owners}`;

/** How often a consumer collects abandoned caller keys (see CallChannel.sweep). */
const SWEEP_MS = 10_000;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const toRecord = (err: unknown): ReplyRecord => ({
  ok: false,
  code: err instanceof DgenError ? err.code : 'HANDLER_FAILED',
  message: err instanceof Error ? err.message : String(err),
});
const fromRecord = (rec: ReplyRecord): unknown => {
  if (rec.ok) return rec.value;
  throw new HandlerError(rec.code as 'HANDLER_FAILED', rec.message);
};

/**
 * One process's incarnation of a durable server: it publishes messages to the durable queue and, when
 * consuming, runs the consumer loop — backend watch events → queue items → dispatcher → transaction.
 */
export class ServerProcess {
  readonly events$ = new Subject<ServerEvent>();
  readonly done: Promise<unknown>;
  readonly keys: ServerKeys;
  private resolveDone!: (reason: unknown) => void;
  /** Who holds the lock when this process takes it (lock records name their owner). */
  private readonly owner = nextOwnerId();
  private cached?: StoredState;
  private misses = 0;
  private lastSweep = 0;
  private stopped = false;
  private readonly wake$ = new Subject<void>();
  private consumer?: Subscription;
  /** Work stop() waits for; created on first use (thousands of idle servers need none). */
  private inFlight?: Set<Promise<unknown>>;
  private armed?: { watch?: Watch; timer?: NodeJS.Timeout };
  private pendingCalls?: Set<() => void>;
  private readonly tenant: Tenant;
  private readonly window: BatchWindow;

  constructor(
    private readonly def: ClassDefinition,
    private readonly instance: object,
    readonly tuid: Tuid,
    private readonly storage: (keys: ServerKeys) => StateStorage,
    private readonly opts: ResolvedOptions,
  ) {
    this.tenant = opts.tenant;
    this.keys = new ServerKeys(tuid);
    this.window = new BatchWindow(this.keys, opts.maxBatch);
    this.state = storage(this.keys);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }
  private readonly state: StateStorage;

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Writes the initial state unless one is stored (or `reset`), then starts consuming. */
  async init(initial: unknown): Promise<void> {
    deepFreeze(initial);
    const stamp = await this.tenant.transact(async (tx) => {
      const existing = await this.state.read(tx);
      if (existing && !this.opts.reset) return {};
      this.state.write(tx, existing?.state, initial);
      return { stamp: this.stampOf(tx) }; // wrapped: a returned promise would be awaited inside the transaction
    });
    if (stamp.stamp) this.cached = { state: initial, version: await stamp.stamp };
    if (this.opts.consume) this.startConsumer();
  }

  // ---- publishing -------------------------------------------------------------------------------

  async cast(msgs: readonly unknown[]): Promise<void> {
    this.live();
    await this.tenant.transact((tx) =>
      DurableQueue.push(
        tx,
        this.keys,
        msgs.map((msg) => ({ kind: 'cast', msg })),
      ),
    );
  }

  async call(msg: unknown, timeout: number): Promise<unknown> {
    this.live();
    const from = CallChannel.newFrom(timeout);
    const local = `local:${randomUUID()}`;
    const tryInline = this.opts.consume;
    const pushed = await this.guard(() =>
      this.tenant.transact(async (tx): Promise<{ watch: Watch } | { outcome: Outcome }> => {
        if (tryInline && (await DurableQueue.length(tx, this.keys)) === 0 && !(await this.lockHeld(tx))) {
          return { outcome: await this.handle(tx, 'call', msg, { kind: 'local', from: local }, 'call') };
        }
        const watch = CallChannel.open(tx, this.keys, from);
        DurableQueue.push(tx, this.keys, [{ kind: 'call', msg, from }]);
        return { watch };
      }),
    );
    if ('outcome' in pushed) return this.finishLocal(pushed.outcome, timeout);
    return this.awaitDurableReply(from, pushed.watch, timeout);
  }

  async priorityCall(msg: unknown, timeout: number): Promise<unknown> {
    this.live();
    const local = `local:${randomUUID()}`;
    const outcome = await this.guard(() =>
      this.tenant.transact((tx) =>
        this.handle(tx, 'call', msg, { kind: 'local', from: local }, 'priority-call'),
      ),
    );
    return this.finishLocal(outcome, timeout);
  }

  async priorityCast(msg: unknown): Promise<void> {
    this.live();
    const outcome = await this.guard(() =>
      this.tenant.transact((tx) => this.handle(tx, 'cast', msg, { kind: 'none' }, 'priority-cast')),
    );
    await this.finish(outcome);
  }

  send(msg: unknown): void {
    this.live();
    if (!findHandler(this.def, 'info', msg)) {
      this.emit({ type: 'info-dropped', msg });
      return;
    }
    const run = this.guard(() =>
      this.tenant.transact((tx) => this.handle(tx, 'info', msg, { kind: 'none' }, 'info')),
    ).then(
      (o) => this.finish(o),
      (error) => this.emit({ type: 'handler-failed', error, attempt: 1 }),
    );
    this.track(run);
  }

  // ---- reading ----------------------------------------------------------------------------------

  async readState(): Promise<unknown> {
    this.live();
    const stored = await this.tenant.read((tx) => this.state.read(tx));
    if (!stored)
      throw new DgenError(
        'NOT_FOUND',
        `server ${JSON.stringify(this.tuid)} has no stored state (was it killed?)`,
      );
    return stored.state;
  }

  async queueLength(): Promise<number> {
    this.live();
    return this.tenant.read((tx) => DurableQueue.length(tx, this.keys));
  }

  async deadLetters(): Promise<DeadLetter[]> {
    this.live();
    const rows = await this.tenant.read((tx) =>
      tx.getRange(this.keys.deadLetters.start, this.keys.deadLetters.end),
    );
    return rows.map((r) => decodeWire<DeadLetter>(r.value));
  }

  // ---- stopping ---------------------------------------------------------------------------------

  async stop(reason: unknown = 'normal'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.consumer?.unsubscribe();
    this.disarm();
    for (const cancel of this.pendingCalls ?? []) cancel();
    while (this.inFlight?.size) await Promise.all(this.inFlight);
    this.emit({ type: 'stopped', reason });
    this.events$.complete();
    this.resolveDone(reason);
  }

  async kill(reason: unknown): Promise<void> {
    this.live();
    await this.tenant.transact((tx) => tx.clearRange(this.keys.all.start, this.keys.all.end));
    this.cached = undefined;
    await this.stop(reason);
  }

  // ---- the consumer loop ------------------------------------------------------------------------

  private startConsumer(): void {
    // One drain at a time (concatMap); each drain ends by arming exactly one watch, whose firing wakes the next.
    this.consumer = this.wake$
      .pipe(concatMap(() => defer(() => this.track(this.drain()))))
      .subscribe({ error: (error) => this.emit({ type: 'consumer-error', error }) });
    this.wake$.next();
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      let step: Awaited<ReturnType<ServerProcess['step']>>;
      try {
        step = await this.step();
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof DgenError && error.code === 'BACKEND_CLOSED') return void this.stop(error);
        this.emit({ type: 'consumer-error', error });
        await delay(50);
        continue;
      }
      if (step.type === 'wait') return this.arm(step.watch, step.retryAt);
      if (this.misses > 0) await delay(Math.min(2 ** (this.misses - 1), 50));
    }
  }

  /**
   * One transaction: handle the messages at the head of the queue — a batch of them, in order, on one
   * state that is written once — or arm a watch if there is none. A batch ends early at a `lock` or
   * `stop` (what follows must wait for them) and after BATCH_MS of handler time.
   */
  private async step(): Promise<{ type: 'handled' } | { type: 'wait'; watch: Watch; retryAt?: number }> {
    let items: HeadItem[] = [];
    let at = 0; // the item being handled: the one to blame if the transaction fails
    let expired: { owner: string } | undefined;
    let committed = false;
    try {
      const r = await this.tenant.transact(async (tx) => {
        items = [];
        at = 0;
        const lockRec = await LockRecords.read(tx, this.keys);
        if (lockRec && lockRec.leaseUntil > Date.now())
          return { wait: DurableQueue.watchPush(tx, this.keys), retryAt: lockRec.leaseUntil + 1 };
        expired = lockRec; // its holder died: the lease ran out
        if (lockRec) tx.clear(this.keys.lock);
        items = await this.window.take(tx);
        if (items.length === 0) {
          this.sweepAbandonedCalls(tx);
          return { wait: DurableQueue.watchPush(tx, this.keys) };
        }
        tx.clear(this.keys.attempts);
        const done: Array<Outcome | Skipped> = [];
        const initial = await this.load(tx);
        let state = initial.state;
        const started = performance.now();
        for (; at < items.length && (at === 0 || performance.now() - started < BATCH_MS); at++) {
          const { key, item } = items[at];
          DurableQueue.pop(tx, this.keys, key);
          const replyTo: ReplyTo =
            item.kind === 'call' ? { kind: 'durable', from: item.from } : { kind: 'none' };
          if (!findHandler(this.def, item.kind, item.msg)) {
            const err = new NoHandlerError(this.def.ctor.name, item.kind, item.msg);
            if (replyTo.kind === 'durable')
              await CallChannel.answer(tx, this.keys, replyTo.from, toRecord(err));
            else this.deadLetter(tx, item.msg, err, 0);
            done.push({ skipped: err, msg: item.msg, call: item.kind === 'call' });
            continue;
          }
          const o = await this.runHandler(tx, item.kind, item.msg, replyTo, item.kind, state);
          state = o.result.state;
          done.push(o);
          const k = returnKindOf(o.result);
          if (k === 'lock' || k === 'stop') break;
        }
        const last = [...done].reverse().find((d): d is Outcome => 'result' in d);
        if (last && state !== initial.state) {
          this.state.write(tx, initial.state, state);
          last.stamp = this.stampOf(tx);
        }
        return { done };
      });
      committed = true;
      if (expired) this.emit({ type: 'lock-expired', owner: expired.owner });
      if ('wait' in r && r.wait) return { type: 'wait', watch: r.wait, retryAt: r.retryAt };
      for (const d of r.done ?? []) {
        if ('result' in d) await this.finish(d);
        else {
          this.emit({ type: 'handler-failed', error: d.skipped, attempt: 1 });
          if (!d.call) this.emit({ type: 'dead-lettered', msg: d.msg });
        }
      }
      return { type: 'handled' };
    } catch (error) {
      const failed = items[at] ?? items[items.length - 1];
      if (committed || !failed || !(error instanceof HandlerError) || this.stopped) throw error;
      // Not the head: nothing of the batch committed; retry the items before it, then it alone.
      if (at > 0) this.window.suspectItem(failed.key);
      else await this.recordFailure(failed.key, failed.item, error);
      return { type: 'handled' };
    }
  }

  /** A handler failed on the head item: count the attempt; at maxAttempts move it to the dead letters. */
  private async recordFailure(key: Buffer, item: QueueItem, error: HandlerError): Promise<void> {
    const attempt = await this.tenant.transact(async (tx) => {
      const raw = await tx.get(this.keys.attempts);
      const prev = raw ? decodeWire<{ key: Buffer; n: number }>(raw) : undefined;
      const n = prev && Buffer.from(prev.key).equals(key) ? prev.n + 1 : 1;
      if ((await tx.get(key)) === undefined) return n; // another consumer dealt with it
      if (n < this.opts.maxAttempts) {
        tx.set(this.keys.attempts, encodeWire({ key, n }));
        return n;
      }
      DurableQueue.pop(tx, this.keys, key);
      tx.clear(this.keys.attempts);
      this.deadLetter(tx, item.msg, error, n);
      if (item.kind === 'call') await CallChannel.answer(tx, this.keys, item.from, toRecord(error));
      return n;
    });
    this.emit({ type: 'handler-failed', error, attempt });
    if (attempt >= this.opts.maxAttempts) this.emit({ type: 'dead-lettered', msg: item.msg });
  }

  /** At most every SWEEP_MS, when the queue is found empty: collect the keys of callers that died waiting. */
  private sweepAbandonedCalls(tx: Transaction): void {
    if (Date.now() - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = Date.now();
    CallChannel.sweep(tx, this.keys);
  }

  private deadLetter(tx: Transaction, msg: unknown, error: Error, attempts: number): void {
    const letter: DeadLetter = { msg, error: error.message, attempts };
    tx.setVersionstampedKey(this.keys.deadLetterTuple({ type: 'unbound versionstamp' }), encodeWire(letter));
  }

  private arm(watch: Watch, retryAt?: number): void {
    this.disarm();
    const armed: { watch: Watch; timer?: NodeJS.Timeout; fired?: boolean } = { watch };
    const fire = () => {
      if (armed.fired || this.stopped) return;
      armed.fired = true;
      if (this.armed === armed) this.disarm();
      this.wake$.next();
    };
    watch.changed.then((changed) => changed && fire());
    if (retryAt !== undefined) armed.timer = setTimeout(fire, Math.max(0, retryAt - Date.now()));
    this.armed = armed;
  }

  private disarm(): void {
    if (!this.armed) return;
    this.armed.watch?.cancel();
    clearTimeout(this.armed.timer);
    this.armed = undefined;
  }

  // ---- handling ---------------------------------------------------------------------------------

  /** Runs one handler inside `tx` and writes its effects; the caller commits and then calls `finish`. */
  private async handle(
    tx: Transaction,
    role: Role,
    msg: unknown,
    replyTo: ReplyTo,
    kind: HandledKind,
  ): Promise<Outcome> {
    if (!findHandler(this.def, role, msg)) throw new NoHandlerError(this.def.ctor.name, role, msg);
    const current = await this.load(tx);
    const o = await this.runHandler(tx, role, msg, replyTo, kind, current.state);
    o.stamp = this.applyResult(tx, current.state, o.result);
    return o;
  }

  /** Runs one handler on `state` inside `tx`, writing its lock and reply but not its state. */
  private async runHandler(
    tx: Transaction,
    role: Role,
    msg: unknown,
    replyTo: ReplyTo,
    kind: HandledKind,
    state: unknown,
  ): Promise<Outcome> {
    const method = findHandler(this.def, role, msg);
    if (!method) throw new NoHandlerError(this.def.ctor.name, role, msg);
    const started = performance.now();
    const args =
      role === 'call' ? [msg, replyTo.kind === 'none' ? undefined : replyTo.from, state] : [msg, state];
    const result = await invokeHandler<Result>(this.def, this.instance, role, method, args);
    deepFreeze(result.state);
    const ms = performance.now() - started;
    const kindOf = returnKindOf(result);
    if (kindOf === 'lock') LockRecords.take(tx, this.keys, this.owner, this.opts.lockLeaseMs);
    if (replyTo.kind === 'durable' && kindOf === 'reply')
      await CallChannel.answer(tx, this.keys, replyTo.from, {
        ok: true,
        value: (result as ReplyReturn<unknown>).value,
      });
    if (replyTo.kind === 'durable' && kindOf === 'stop')
      await CallChannel.answer(tx, this.keys, replyTo.from, toRecord(new StoppedError()));
    return { result, kind, msg, replyTo, ms };
  }

  /** Writes the new state if it changed, returning the commit's versionstamp promise. */
  private applyResult(tx: Transaction, previous: unknown, result: Result): Promise<Buffer> | undefined {
    const next = deepFreeze(result.state);
    if (next === previous) return undefined;
    this.state.write(tx, previous, next);
    return this.stampOf(tx);
  }

  private stampOf(tx: Transaction): Promise<Buffer> {
    const p = tx.getVersionstamp();
    p.catch(() => undefined); // an aborted attempt rejects it; only the committed one is used
    return p;
  }

  /** The current state: the cached one while the stored version is unchanged, else read. */
  private async load(tx: Transaction): Promise<StoredState> {
    if (this.opts.cache && this.cached) {
      const version = await this.state.readVersion(tx);
      if (version && version.equals(this.cached.version)) {
        this.misses = 0;
        return this.cached;
      }
      this.misses++;
    }
    const stored = await this.state.read(tx);
    if (!stored)
      throw new DgenError(
        'NOT_FOUND',
        `server ${JSON.stringify(this.tuid)} has no stored state (was it killed?)`,
      );
    deepFreeze(stored.state);
    return stored;
  }

  /** After commit: cache, events, then the lock handler, actions and stop, in that order. */
  private async finish(o: Outcome): Promise<unknown> {
    const kindOf = returnKindOf(o.result);
    if (o.stamp) {
      const version = await o.stamp;
      if (this.opts.cache) this.cached = { state: o.result.state, version };
      this.emit({ type: 'committed', version: version.toString('hex') });
    }
    this.emit({ type: 'handled', kind: o.kind, ms: o.ms });
    if (kindOf === 'lock') return this.runLocked(o);
    const actions = 'actions' in o.result ? (o.result.actions as ReadonlyArray<Action<unknown>>) : [];
    await runActions(actions, o.result.state, (error) => this.emit({ type: 'action-failed', error }));
    if (kindOf === 'stop') void this.stop((o.result as StopReturn<unknown>).reason);
    return kindOf === 'reply' ? (o.result as ReplyReturn<unknown>).value : undefined;
  }

  /** A local (inline or priority) call: finish, then resolve with the reply or wait for a noreply's timeout. */
  private async finishLocal(o: Outcome, timeout: number): Promise<unknown> {
    const before = returnKindOf(o.result);
    const value = await this.finish(o);
    const locked =
      before === 'lock' ? (value as { replied: boolean; value?: unknown } | undefined) : undefined;
    if (before === 'reply' || locked?.replied) return locked ? locked.value : value;
    if (before === 'stop' && this.stopped) throw new StoppedError();
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
    this.emit({ type: 'lock-acquired' });
    const ev =
      o.replyTo.kind === 'none' ? { kind: 'cast' as const } : { kind: 'call' as const, from: o.replyTo.from };
    const renew = setInterval(
      () =>
        void this.tenant
          .transact((tx) => LockRecords.renew(tx, this.keys, this.owner, this.opts.lockLeaseMs))
          .catch(() => undefined),
      Math.max(10, this.opts.lockLeaseMs / 3),
    );
    let outcome: { replied: boolean; value?: unknown } = { replied: false };
    try {
      const method = findHandler(this.def, 'locked', o.msg);
      let result: ReplyReturn<unknown> | NoreplyReturn<unknown> | StopReturn<unknown> | undefined;
      let failure: Error | undefined;
      const started = performance.now();
      try {
        if (!method) throw new NoHandlerError(this.def.ctor.name, 'locked', o.msg);
        result = await invokeHandler(this.def, this.instance, 'locked', method, [ev, o.msg, o.result.state]);
        if (returnKindOf(result) === 'reply' && ev.kind === 'cast')
          throw new HandlerError(
            'BAD_RETURN',
            `${this.def.ctor.name}.${String(method)} returned reply(…) for a cast`,
          );
      } catch (error) {
        failure = error as Error;
        result = undefined;
        this.emit({ type: 'handler-failed', error, attempt: 1 });
      }
      const ms = performance.now() - started;
      const kindOf = result && returnKindOf(result);
      const stamp = await this.tenant.transact(async (tx) => {
        let stampP: Promise<Buffer> | undefined;
        if (result) {
          const current = await this.load(tx);
          stampP = this.applyResult(tx, current.state, result) ?? undefined;
        }
        if (o.replyTo.kind === 'durable') {
          if (failure) await CallChannel.answer(tx, this.keys, o.replyTo.from, toRecord(failure));
          else if (kindOf === 'reply')
            await CallChannel.answer(tx, this.keys, o.replyTo.from, {
              ok: true,
              value: (result as ReplyReturn<unknown>).value,
            });
        }
        if (await LockRecords.release(tx, this.keys, this.owner)) DurableQueue.notify(tx, this.keys);
        return { stampP };
      });
      if (stamp.stampP && result) {
        const version = await stamp.stampP;
        if (this.opts.cache) this.cached = { state: result.state, version };
        this.emit({ type: 'committed', version: version.toString('hex') });
      }
      this.emit({ type: 'handled', kind: 'locked', ms });
      if (failure && o.replyTo.kind === 'local') throw failure;
      if (result) {
        await runActions(result.actions, result.state, (error) =>
          this.emit({ type: 'action-failed', error }),
        );
        if (kindOf === 'stop') void this.stop((result as StopReturn<unknown>).reason);
        if (kindOf === 'reply') outcome = { replied: true, value: (result as ReplyReturn<unknown>).value };
      }
    } finally {
      clearInterval(renew);
      // Also when committing the result failed: never leave the lock to its lease.
      await this.tenant
        .transact(async (tx) => {
          if (await LockRecords.release(tx, this.keys, this.owner)) DurableQueue.notify(tx, this.keys);
        })
        .catch(() => undefined);
      this.emit({ type: 'lock-released' });
    }
    return outcome;
  }

  private async awaitDurableReply(from: FromId, watch: Watch, timeout: number): Promise<unknown> {
    const deadline = Date.now() + timeout;
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
      watch.cancel();
    };
    (this.pendingCalls ??= new Set()).add(cancel);
    try {
      for (;;) {
        const left = deadline - Date.now();
        const fired = await Promise.race([
          watch.changed,
          new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, left)))),
        ]);
        clearTimeout(timer);
        if (cancelled) throw new StoppedError();
        const reply = await this.tenant.transact(async (tx) => {
          const rec = await CallChannel.read(tx, this.keys, from);
          if (rec || !fired || Date.now() >= deadline) CallChannel.close(tx, this.keys, from);
          if (!rec && fired && Date.now() < deadline)
            return { rewatch: tx.watch(this.keys.pendingMarker(from)) };
          return { rec };
        });
        if ('rewatch' in reply && reply.rewatch) {
          watch = reply.rewatch;
          continue;
        }
        if ('rec' in reply && reply.rec) return fromRecord(reply.rec);
        throw new CallTimeoutError(
          'CALL_TIMEOUT',
          `call got no reply within ${timeout} ms; is a consumer running for this server?`,
        );
      }
    } finally {
      watch.cancel();
      this.pendingCalls?.delete(cancel);
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private async lockHeld(tx: Transaction): Promise<boolean> {
    const rec = await LockRecords.read(tx, this.keys);
    return rec !== undefined && rec.leaseUntil > Date.now();
  }

  /** Runs work that stop() should wait for. */
  private track<T>(p: Promise<T>): Promise<T> {
    const inFlight = (this.inFlight ??= new Set());
    const settled = p.then(
      () => void inFlight.delete(settled),
      () => void inFlight.delete(settled),
    );
    inFlight.add(settled);
    return p;
  }

  private guard<T>(fn: () => Promise<T>): Promise<T> {
    return this.track(fn());
  }

  private live(): void {
    if (this.stopped) throw new StoppedError();
  }

  private emit(e: ServerEvent): void {
    if (!this.events$.closed) this.events$.next(e);
  }
}

const returnKindOf = (r: unknown) => returnKind(r) as 'reply' | 'noreply' | 'lock' | 'stop' | undefined;
