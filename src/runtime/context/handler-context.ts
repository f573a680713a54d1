import { randomUUID } from 'node:crypto';
import type { Tenant, Transaction } from '../../backend/types';
import { BadArgumentError } from '../../errors';
import { describeValue, isWellFormed } from '../../text';
import type { Clock } from '../../kernel/clock';
import { TimerStore } from '../../timers/timer-store';
import type { ServerKeys } from '../server-keys';
import { Outbox } from './outbox';
import { targetKeys } from './targets';
import type { TimerView } from './timer-view';

export interface TimerOptions {
  /** Names the timer: a later timer with the same key replaces it. Default: a new random key. */
  key?: string;
}

/**
 * The last parameter of every durable-server handler. What a handler asks of it is written in the
 * same transaction as the state the handler returns, or not at all: a handler that throws, or whose
 * transaction is retried, leaves nothing behind (a re-run handler asks again; nothing is duplicated).
 */
export interface HandlerContext {
  /** The server's clock, in ms since the epoch (the `clock` start option; a VirtualClock in tests). */
  now(): number;
  /**
   * A durable timer: after `delayMs`, `msg` is cast to this server through its queue (at least
   * once, on any consuming process). Returns the timer's key; a timer with the same key is replaced.
   */
  castAfter(delayMs: number, msg: unknown, options?: TimerOptions): string;
  /**
   * Cancels the pending timer `key` (nothing if there is none) when the handler's transaction commits,
   * and resolves with whether one was pending: true for a timer stored or set earlier in this handling
   * (and not cancelled since), false for none — also for one that already fell due (its message is a
   * queued cast). The answer holds at the commit: if the timer fired, or another process set or
   * cancelled it, before the handler's effects were written, the handler runs again and is asked anew.
   * Awaiting it costs one key read; a handler that does not need the answer need not await it.
   */
  cancelTimer(key: string): Promise<boolean>;
  /**
   * Casts `msg` to `target` (a ServerRef of the same tenant, or a tuid in it) in the handler's own
   * transaction: the target gets the message if and only if this handler's state commits (outbox).
   */
  cast(target: unknown, msg: unknown): void;
}

type Ask =
  | { kind: 'timer'; key: string; due: number; msg: unknown }
  | { kind: 'cancel'; key: string }
  | { kind: 'cast'; target: ServerKeys; item: Buffer }; // the queue item, encoded (Outbox.encode)

/** Most characters of a timer key (keys are stored in the server's key space). */
const MAX_KEY = 1000;

export function checkTimerKey(key: unknown, where: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY || !isWellFormed(key))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `${where}: a timer key is a non-empty string of at most ${MAX_KEY} characters without lone surrogates (got ${describeValue(key)})`,
    );
  return key;
}

/** The longest delay: 100 years (due times stay exact integers in the index). */
const MAX_DELAY = 100 * 365.25 * 24 * 3_600_000;

export function checkDelay(delayMs: unknown, where: string): number {
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0 || delayMs > MAX_DELAY)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `${where}: the delay is a number of ms from 0 to 100 years (got ${describeValue(delayMs)})`,
    );
  return delayMs;
}

export function timerKeyOf(options: TimerOptions | undefined, where: string): string {
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw new BadArgumentError('BAD_ARGUMENT', `${where}: options must be an object such as { key }`);
  return options?.key === undefined ? randomUUID() : checkTimerKey(options.key, where);
}

/** A timer falls due at a whole millisecond: the due-ordered index sorts integers. */
export const dueAt = (clock: Clock, delayMs: number): number => Math.ceil(clock.now() + delayMs);

/** The HandlerContext of one handler run: it buffers what is asked, for `apply` in the transaction. */
export class ContextAsks implements HandlerContext {
  private asks?: Ask[];
  /** After apply: the earliest due it set (for this process's timer scheduler). */
  earliest?: number;

  /** `view`: the timers as this handler's batch sees them (shared by its handlers, see timer-view.ts). */
  constructor(
    private readonly clock: Clock,
    private readonly tenant: Tenant,
    private readonly view: TimerView,
  ) {}

  now(): number {
    return this.clock.now();
  }

  castAfter(delayMs: number, msg: unknown, options?: TimerOptions): string {
    const due = dueAt(this.clock, checkDelay(delayMs, 'ctx.castAfter'));
    const key = timerKeyOf(options, 'ctx.castAfter');
    Outbox.check(msg);
    (this.asks ??= []).push({ kind: 'timer', key, due, msg });
    this.view.set(key);
    return key;
  }

  cancelTimer(key: string): Promise<boolean> {
    (this.asks ??= []).push({ kind: 'cancel', key: checkTimerKey(key, 'ctx.cancelTimer') });
    return this.view.cancel(key);
  }

  cast(target: unknown, msg: unknown): void {
    const keys = targetKeys(target, this.tenant, 'ctx.cast');
    (this.asks ??= []).push({ kind: 'cast', target: keys, item: Outbox.encode(msg) });
  }

  get empty(): boolean {
    return this.asks === undefined;
  }

  /** Writes what was asked into `tx`, in the order asked, for the server at `self`. */
  async apply(tx: Transaction, self: ServerKeys): Promise<void> {
    this.earliest = undefined;
    for (const a of this.asks ?? []) {
      if (a.kind === 'cast') Outbox.cast(tx, a.target, a.item);
      else if (a.kind === 'cancel') await TimerStore.cancel(tx, self, a.key);
      else {
        await TimerStore.set(tx, self, a.key, a.due, a.msg);
        this.earliest = Math.min(this.earliest ?? Infinity, a.due);
      }
    }
    if (this.earliest !== undefined) TimerStore.notify(tx, self);
  }
}
