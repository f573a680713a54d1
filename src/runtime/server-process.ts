import { randomUUID } from 'node:crypto';
import type { Observable } from 'rxjs';
import type { ReadTransaction, Tenant, Transaction, Watch } from '../backend/types';
import { DgenError, StoppedError } from '../errors';
import type { ClassDefinition } from '../registry/class-definition';
import type { Tuid } from '../returns';
import { CallChannel } from './call-channel';
import { Consumer } from './consumer';
import { DurableQueue } from './durable-queue';
import type { ServerEvent } from './events';
import { deepFreeze } from '../kernel/freeze';
import { Handling, type Outcome } from './handling';
import { findHandler } from '../kernel/invoke';
import { holdProcessOpen } from './keep-alive';
import { Lifecycle } from '../kernel/lifecycle';
import { classVersion } from '../kernel/upgrade';
import { LockRecords } from './lock-record';
import type { ResolvedOptions } from './options';
import { awaitDurableReply } from './reply-wait';
import type { ServerContext } from './server-context';
import { ServerKeys } from './server-keys';
import type { StateStorage } from './state-storage';
import { decodeWire, type DeadLetter, type FromId } from './wire';
import { forgetServer, recordServer, registerTenant } from '../ops/server-index';
import { ServerTimers } from '../timers/server-timers';
import type { OfferOutcome } from '../timers/timer-offer';
import { PushGroup } from './push-group';

/** Most read replies' keys one push clears (more are left to the consumer's sweep). */
const MAX_SPENT = 256;

/** Lock owner ids: one random id per process, then a counter (a flat string, cheaper than a UUID each). */
const PROCESS_ID = randomUUID();
let owners = 0;
const nextOwnerId = (): string => `${PROCESS_ID}/${++owners}`;

/**
 * One process's incarnation of a durable server: what its ServerRef calls. It publishes messages to
 * the durable queue, handles inline and priority messages itself (Handling), and when consuming runs
 * the consumer loop (Consumer).
 */
export class ServerProcess implements ServerContext {
  private readonly life = new Lifecycle<ServerEvent>();
  readonly done: Promise<unknown> = this.life.done;
  readonly keys: ServerKeys;
  readonly tenant: Tenant;
  readonly state: StateStorage;
  readonly owner = nextOwnerId();
  readonly timers: ServerTimers;
  private stopped = false;
  private readonly handling: Handling;
  private consumer?: Consumer;
  /** Lets the process exit again once this consumer stops (see keep-alive.ts). */
  private release?: () => void;
  /** Work stop() waits for; created on first use (thousands of idle servers need none). */
  private inFlight?: Set<Promise<unknown>>;
  private pendingCalls?: Set<() => void>;
  /** Keys of durable calls whose reply was read: the next push clears them (no commit of their own). */
  private spent?: Buffer[][];

  constructor(
    readonly def: ClassDefinition,
    readonly instance: object,
    readonly tuid: Tuid,
    storage: (keys: ServerKeys) => StateStorage,
    readonly opts: ResolvedOptions,
  ) {
    this.tenant = opts.tenant;
    this.keys = new ServerKeys(tuid);
    this.state = storage(this.keys);
    this.handling = new Handling(this);
    this.timers = new ServerTimers(this, opts.clock);
  }

  get events$(): Observable<ServerEvent> {
    return this.life.events$;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Writes the initial state unless one is stored (or `reset`), then starts consuming. */
  async init(initial: unknown): Promise<void> {
    deepFreeze(initial);
    await registerTenant(this.tenant); // ops hook: the server index (src/ops/server-index.ts)
    const stamp = await this.tenant.transact(async (tx) => {
      await recordServer(tx, this.tuid, this.def.ctor.name, classVersion(this.def)); // ops hook
      const existing = await this.state.read(tx);
      if (existing && !this.opts.reset && !existing.upgraded) return { existing };
      // A state stored by an older version of the class is written back upgraded, in this transaction.
      const state = existing && !this.opts.reset ? deepFreeze(existing.state) : initial;
      this.state.write(tx, existing?.state, state);
      if (existing?.upgraded) DurableQueue.notify(tx, this.keys); // wakes older consumers: they step aside
      return { state, stamp: this.handling.stampOf(tx) }; // wrapped: a returned promise would be awaited inside the transaction
    });
    if (stamp.stamp) this.handling.remember(stamp.state, await stamp.stamp);
    // The stored state, as read: the first message then needs only its version, not the state.
    else if (stamp.existing) this.handling.remember(deepFreeze(stamp.existing.state), stamp.existing.version);
    if (this.opts.consume) {
      this.release = holdProcessOpen();
      this.timers.consume();
      this.consumer = new Consumer(this, this.handling);
      this.consumer.start();
    }
  }

  // ---- publishing -------------------------------------------------------------------------------

  async cast(msgs: readonly unknown[]): Promise<void> {
    this.live();
    if (msgs.length === 0) return;
    const spent = this.takeSpent();
    // Shared with this process's concurrent pushes where commits are costly and serialized (push-group.ts).
    await PushGroup.run(this.tenant, (tx) => {
      this.clearSpent(tx, spent);
      DurableQueue.push(
        tx,
        this.keys,
        msgs.map((msg) => ({ kind: 'cast', msg })),
      );
    });
  }

  async call(msg: unknown, timeout: number): Promise<unknown> {
    this.live();
    const from = CallChannel.newFrom(timeout);
    const spent = this.takeSpent();
    const push = (tx: Transaction): { watch: Watch } => {
      this.clearSpent(tx, spent);
      const watch = CallChannel.open(tx, this.keys, from);
      DurableQueue.push(tx, this.keys, [{ kind: 'call', msg, from }]);
      return { watch };
    };
    // A consuming ref handles the call itself while the queue is empty and the server unlocked.
    const pushed = await this.guard(async (): Promise<{ watch: Watch } | { outcome: Outcome }> => {
      // Nobody learns of the push but from the reply, whose commit flushes it too: no flush of its own.
      if (!this.opts.consume) return PushGroup.run(this.tenant, push, true);
      const local = `local:${randomUUID()}`;
      const r = await this.handling.handleOutside('call', msg, { kind: 'local', from: local }, 'call', {
        holds: async (tx) => (await DurableQueue.length(tx, this.keys)) === 0 && !(await this.lockHeld(tx)),
        otherwise: push,
        instead: () => PushGroup.run(this.tenant, push, true), // as a non-consuming ref's push
      });
      if ('otherwise' in r) return r.otherwise;
      if (spent) (this.spent ??= []).push(...spent); // not cleared: the next push will
      return r;
    });
    if ('outcome' in pushed) return this.handling.finishLocal(pushed.outcome, timeout);
    return this.awaitReply(from, pushed.watch, timeout);
  }

  /** Waits for the reply to the queued call `from` (its pending marker watched by `watch`). */
  awaitReply(from: FromId, watch: Watch, timeout: number): Promise<unknown> {
    return awaitDurableReply(
      this.tenant,
      this.keys,
      from,
      watch,
      timeout,
      (cancel) => this.onStop(cancel),
      (read) => {
        const list = (this.spent ??= []);
        if (list.length < MAX_SPENT) list.push(read);
      },
    );
  }

  /** Registers `cancel` to run when this process stops (a waiting call rejects with STOPPED); returns how to forget it. */
  onStop(cancel: () => void): () => void {
    (this.pendingCalls ??= new Set()).add(cancel);
    return () => this.pendingCalls?.delete(cancel);
  }

  private takeSpent(): Buffer[][] | undefined {
    const spent = this.spent;
    this.spent = undefined;
    return spent;
  }

  /** Clears the keys of calls whose reply was read (a retried body clears them again: harmless). */
  private clearSpent(tx: Transaction, spent: Buffer[][] | undefined): void {
    if (spent) for (const keys of spent) CallChannel.clear(tx, keys);
  }

  async priorityCall(msg: unknown, timeout: number): Promise<unknown> {
    this.live();
    const local = `local:${randomUUID()}`;
    const { outcome } = await this.guard(() =>
      this.handling.handleOutside('call', msg, { kind: 'local', from: local }, 'priority-call'),
    );
    return this.handling.finishLocal(outcome, timeout);
  }

  async priorityCast(msg: unknown): Promise<void> {
    this.live();
    const { outcome } = await this.guard(() =>
      this.handling.handleOutside('cast', msg, { kind: 'none' }, 'priority-cast'),
    );
    await this.handling.finish(outcome);
  }

  send(msg: unknown): void {
    this.live();
    if (!findHandler(this.def, 'info', msg)) {
      this.emit({ type: 'dropped', kind: 'info', msg });
      return;
    }
    const run = this.guard(() => this.handling.handleOutside('info', msg, { kind: 'none' }, 'info')).then(
      ({ outcome }) => this.handling.finish(outcome),
      (error) => this.emit({ type: 'handler-failed', kind: 'info', error, attempt: 1 }),
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

  /** TimerOwner: this process's scheduler offers due timers to the consumer here (TimerOffer). */
  offerTimers(now: number): Promise<OfferOutcome> | undefined {
    return this.consumer?.offerTimers(now);
  }

  // ---- stopping ---------------------------------------------------------------------------------

  async stop(reason: unknown = 'normal', terminate = true): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.consumer?.halt();
    this.timers.stop();
    this.release?.();
    for (const cancel of this.pendingCalls ?? []) cancel();
    while (this.inFlight?.size) await Promise.all(this.inFlight);
    await this.consumer?.release();
    // Not after kill, nor when another process killed the server: its state is gone.
    const gone = reason instanceof DgenError && reason.code === 'NOT_FOUND';
    await this.life.end(
      reason,
      this.def,
      this.instance,
      terminate && !gone
        ? () => this.handling.lastKnownState(() => this.tenant.read((tx) => this.state.read(tx)))
        : undefined,
    );
  }

  async kill(reason: unknown): Promise<void> {
    this.live();
    await this.tenant.transact((tx) => {
      tx.clearRange(this.keys.all.start, this.keys.all.end);
      forgetServer(tx, this.tuid); // ops hook: the server index
    });
    this.handling.forget();
    await this.stop(reason, false);
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private async lockHeld(tx: ReadTransaction): Promise<boolean> {
    const rec = await LockRecords.read(tx, this.keys);
    return rec !== undefined && rec.leaseUntil > Date.now();
  }

  /** Runs work that stop() should wait for. */
  track<T>(p: Promise<T>): Promise<T> {
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

  emit(e: ServerEvent): void {
    this.life.emit(e);
  }
}
