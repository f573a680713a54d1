import type { Observable } from 'rxjs';
import { callTimeoutOf } from '../kernel/call-timeout';
import { BadArgumentError, StoppedError } from '../errors';
import {
  purgeDeadLetters,
  readDeadLetters,
  requeueDeadLetters,
  type IdentifiedDeadLetter,
} from '../ops/dead-letters';
import type { Tuid } from '../returns';
import { traceSend } from '../telemetry/spans';
import type { ServerEvent } from './events';
import { idempotencyKeyOf } from './idempotency';
import { callOnce, castOnce } from './idempotent-publish';
import type { ServerProcess } from './server-process';
import { makeClient, type Client, type UntypedClient } from './typed-client';
import type { Transaction } from '../backend/types';
import type { TimerOptions } from './context/handler-context';
import { registerRefHome } from './context/targets';
import type { PendingTimer } from '../timers/timer-store';
import { RefTimers } from '../timers/ref-timers';

export interface CallOptions {
  /** Milliseconds to wait for the reply (the start option `callTimeout`, 5000 by default); `Infinity` waits for ever. */
  timeout?: number;
  /**
   * Handle this call once per key within the retention window (start option `idempotencyRetentionMs`,
   * default 24 h): a repeat is not queued and resolves with the first call's reply. Not for `priorityCall`.
   */
  idempotencyKey?: string;
}

export interface CastOptions {
  /** Enqueue once per key within the retention window: a repeat resolves without enqueuing anything. */
  idempotencyKey?: string;
}

/** A handle on a durable server from this process. Every method of a stopped ref rejects with STOPPED. */
export interface ServerRef<S = unknown> {
  /** The server's identity: ['dgen_server', name] unless `@Init` returned `ok(state, tuid)`. */
  readonly tuid: Tuid;
  /**
   * The server's `@OnCall`/`@OnCast` methods by name: `await ref.client.get()` is `ref.call('get')`,
   * `ref.client.add({ type: 'add', by: 2 })` a cast. Typed from the class on the refs that
   * `Runtime.start(Class, …)` infers (TypedServerRef).
   */
  readonly client: UntypedClient;
  /** What this process does for the server (handled, committed, lock-acquired, …, stopped). */
  readonly events$: Observable<ServerEvent>;
  /** Resolves with the exit reason: `stop(reason, s)`'s reason, `'normal'` for `ref.stop()`, `kill(r)`'s r. */
  readonly done: Promise<unknown>;
  /** A call through the durable queue (handled inline when the queue is empty); resolves with the reply. */
  call<R = unknown>(msg: unknown, options?: CallOptions): Promise<R>;
  /** Resolves once the message is durably enqueued (or, with an idempotency key seen before, at once). */
  cast(msg: unknown, options?: CastOptions): Promise<void>;
  /** Enqueues all messages in one transaction: all or none (an idempotency key covers the batch). */
  castMany(msgs: readonly unknown[], options?: CastOptions): Promise<void>;
  /** A call that skips the queue and the lock (breaks ordering; good for snapshot reads). */
  priorityCall<R = unknown>(msg: unknown, options?: CallOptions): Promise<R>;
  /** A cast that skips the queue and the lock; resolves once handled and committed. */
  priorityCast(msg: unknown): Promise<void>;
  /** An info message for `@OnInfo`, handled in its own transaction; returns at once. */
  send(msg: unknown): void;
  /** Stops this process's part of the server; the durable state and queue stay. */
  stop(reason?: unknown): Promise<void>;
  /** Deletes the server's state, queue, waiting calls and dead letters, then stops with `reason`. */
  kill(reason?: unknown): Promise<void>;
  /** A snapshot read of the stored state. */
  readState(): Promise<S>;
  queueLength(): Promise<number>;
  /** Messages whose handler failed `maxAttempts` times (or that no cast handler took), oldest first, each with its `id`. */
  deadLetters(): Promise<IdentifiedDeadLetter[]>;
  /** Puts the dead letters `ids` names (all when absent) back at the end of the queue, in one transaction; resolves with how many. */
  requeueDeadLetters(ids?: readonly string[]): Promise<number>;
  /** Deletes the dead letters `ids` names (all when absent); resolves with how many. */
  purgeDeadLetters(ids?: readonly string[]): Promise<number>;
  /**
   * A durable timer: after `delayMs`, `msg` is cast to the server through its queue, at least once, on
   * any consuming process (also one started after it fell due). Resolves with its key once stored;
   * a timer with the same key is replaced.
   */
  castAfter(delayMs: number, msg: unknown, options?: TimerOptions): Promise<string>;
  /** Cancels the pending timer `key`; resolves with whether there was one. */
  cancelTimer(key: string): Promise<boolean>;
  /** The pending timers, earliest due first: `{ key, due, msg }`. */
  timers(): Promise<PendingTimer[]>;
  /**
   * Casts `msg` inside the caller's own transaction (`tenant.transact(tx => ref.castIn(tx, msg))` on
   * the server's tenant): enqueued if and only if that transaction commits.
   */
  castIn(tx: Transaction, msg: unknown): Promise<void>;
}

/** A ref whose class the compiler knows: its `client` has the class's handler methods, typed. */
export interface TypedServerRef<S, T> extends Omit<ServerRef<S>, 'client'> {
  readonly client: Client<T>;
}

/**
 * The ServerRef implementation. Its methods live on the prototype, not in per-ref closures: a process
 * may hold tens of thousands of idle refs. (Call them on the ref: `ref.cast(m)`, or bind them.)
 */
class DurableServerRef<S> implements ServerRef<S> {
  readonly tuid: Tuid;
  readonly done: Promise<unknown>;

  constructor(
    private readonly p: ServerProcess,
    private readonly callTimeout: number,
  ) {
    this.tuid = p.tuid;
    this.done = p.done;
    registerRefHome(this, p.tenant, p.keys); // a target of ctx.cast
    Object.freeze(this);
  }

  get client(): UntypedClient {
    return makeClient<unknown>(this.p.def, this);
  }

  get events$(): Observable<ServerEvent> {
    return this.p.events$;
  }

  async call<R>(msg: unknown, o?: CallOptions): Promise<R> {
    const timeout = callTimeoutOf(o, this.callTimeout);
    const key = idempotencyKeyOf(o);
    return (await traceSend('call', this.p, [msg], () =>
      key === undefined ? this.p.call(msg, timeout) : callOnce(this.p, msg, key, timeout),
    )) as R; // ops: telemetry
  }

  async cast(msg: unknown, o?: CastOptions): Promise<void> {
    const key = idempotencyKeyOf(o);
    return traceSend('cast', this.p, [msg], () =>
      key === undefined ? this.p.cast([msg]) : castOnce(this.p, [msg], key),
    ); // ops: telemetry
  }

  async castMany(msgs: readonly unknown[], o?: CastOptions): Promise<void> {
    if (!Array.isArray(msgs))
      throw new BadArgumentError('BAD_ARGUMENT', 'castMany takes an array of messages');
    const key = idempotencyKeyOf(o);
    // an empty batch commits nothing, but a stopped ref still says STOPPED
    await traceSend('cast', this.p, msgs, () =>
      key === undefined ? this.p.cast(msgs) : castOnce(this.p, msgs, key),
    );
  }

  async priorityCall<R>(msg: unknown, o?: CallOptions): Promise<R> {
    if (idempotencyKeyOf(o) !== undefined)
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        'priorityCall takes no idempotencyKey (it skips the queue); use call(msg, { idempotencyKey })',
      );
    return (await this.p.priorityCall(msg, callTimeoutOf(o, this.callTimeout))) as R;
  }

  priorityCast(msg: unknown): Promise<void> {
    return this.p.priorityCast(msg);
  }

  send(msg: unknown): void {
    this.p.send(msg);
  }

  stop(reason?: unknown): Promise<void> {
    return this.p.stop(reason ?? 'normal');
  }

  kill(reason?: unknown): Promise<void> {
    return this.p.kill(reason ?? 'killed');
  }

  async readState(): Promise<S> {
    return (await this.p.readState()) as S;
  }

  queueLength(): Promise<number> {
    return this.p.queueLength();
  }

  async deadLetters(): Promise<IdentifiedDeadLetter[]> {
    this.live();
    return this.p.tenant.read((tx) => readDeadLetters(tx, this.p.keys));
  }

  async requeueDeadLetters(ids?: readonly string[]): Promise<number> {
    this.live();
    return requeueDeadLetters(this.p.tenant, this.tuid, ids);
  }

  async purgeDeadLetters(ids?: readonly string[]): Promise<number> {
    this.live();
    return purgeDeadLetters(this.p.tenant, this.tuid, ids);
  }

  async castAfter(delayMs: number, msg: unknown, options?: TimerOptions): Promise<string> {
    this.live();
    return RefTimers.castAfter(this.p, delayMs, msg, options);
  }

  async cancelTimer(key: string): Promise<boolean> {
    this.live();
    return RefTimers.cancelTimer(this.p, key);
  }

  async timers(): Promise<PendingTimer[]> {
    this.live();
    return RefTimers.timers(this.p);
  }

  async castIn(tx: Transaction, msg: unknown): Promise<void> {
    this.live();
    RefTimers.castIn(this.p, tx, msg);
  }

  private live(): void {
    if (this.p.isStopped) throw new StoppedError();
  }
}

export function makeServerRef<S>(p: ServerProcess, callTimeout: number): ServerRef<S> {
  return new DurableServerRef<S>(p, callTimeout);
}
