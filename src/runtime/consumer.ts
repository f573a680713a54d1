import { Subject, concatMap, defer, type Subscription } from 'rxjs';
import type { Transaction, Watch } from '../backend/types';
import { transactionTimedOut } from '../backend/common/transaction-deadline';
import { LIMITS } from '../backend/types';
import { DgenError, HandlerError } from '../errors';
import { BATCH_MS, BatchWindow, type HeadItem } from './batch-window';
import { CallChannel, toRecord } from './call-channel';
import { DurableQueue } from './durable-queue';
import type { Handling, Outcome, ReplyTo } from './handling';
import { findHandler } from '../kernel/invoke';
import { noHandler } from '../kernel/no-handler';
import { ConsumerLease } from './consumer-lease';
import { recordFailedAttempt } from './failed-attempts';
import { LockRecords } from './lock-record';
import { delay, returnKindOf, type ServerContext } from './server-context';
import type { QueueItem } from './wire';
import type { TimerView } from './context/timer-view';
import { deadLetterIn, hasDeadLetterHandler } from '../ops/on-dead-letter';
import { traceBatch } from '../telemetry/spans';

/** A queue item no handler takes: answered with NO_HANDLER (a call) or dead-lettered (a cast). */
type Skipped = { skipped: Error; msg: unknown; call: boolean };

/** The handlers' outcomes for a batch read from a snapshot, to be written if the snapshot still holds. */
interface Plan {
  /** The server's timers as its handlers were told of them (ctx.cancelTimer): checked at commit. */
  view: TimerView;
  steps: Array<
    | { key: Buffer; item: QueueItem; skipped: Error }
    | { key: Buffer; item: QueueItem; outcome: Outcome; state: unknown }
  >;
}

type Step = { type: 'handled' } | { type: 'wait'; watch?: Watch; retryAt?: number };

/** What a consumer transaction leaves: handled messages (and a watch if it emptied the queue), or a watch. */
type StepResult =
  | { done: Array<Outcome | Skipped>; wait?: Watch; retryAt?: undefined }
  | { done?: undefined; wait: Watch; retryAt?: number };

/** Reply bytes after which a batch takes no further item (the transaction limit is 10 MB). */
const BATCH_REPLY_BYTES = 1_000_000;

/**
 * What a message's own handling can cause, rather than the backend being unreachable: a handler that
 * throws or returns wrongly, a reply or state that cannot be stored, a transaction its handlers make
 * too large or too slow. These count as failed attempts of the message, so it is dead-lettered in the
 * end instead of wedging the queue; anything else is retried as it is.
 */
const ITEM_FAULTS: ReadonlySet<string> = new Set([
  'VALUE_TOO_LARGE',
  'KEY_TOO_LARGE',
  'TRANSACTION_TOO_LARGE',
  'TRANSACTION_TIMED_OUT',
  'NOT_SERIALIZABLE',
]);
const isItemFault = (e: unknown): e is DgenError =>
  e instanceof HandlerError || (e instanceof DgenError && ITEM_FAULTS.has(e.code));

/**
 * The fault to count against a message for `error`, thrown while its handler ran or its effects were
 * written: one of the above, or anything that is not a DgenError at all (whatever class a handler,
 * a serializer or a freeze throws); undefined for infrastructure failures, which are retried.
 */
const itemFault = (error: unknown): DgenError | undefined =>
  isItemFault(error)
    ? error
    : error instanceof DgenError
      ? undefined
      : new HandlerError('HANDLER_FAILED', `handling a message failed: ${String(error)}`, { cause: error });

/** How often a consumer collects abandoned caller keys (see CallChannel.sweep). */
const SWEEP_MS = 10_000;

/**
 * The consumer loop of one server in one process, an RxJS pipeline: backend watch events (wake$) →
 * drain, one at a time (concatMap) → transactions that each take a batch of queue items → handlers.
 * A drain ends by arming exactly one watch, whose firing wakes the next.
 */
export class Consumer {
  private readonly wake$ = new Subject<void>();
  private subscription?: Subscription;
  private armed?: { watch?: Watch; timer?: NodeJS.Timeout };
  private readonly window: BatchWindow;
  private lastSweep = 0;
  /** This consumer has taken the consumer lease at some point (so stopping releases it). */
  private leaseHeld = false;

  constructor(
    private readonly ctx: ServerContext,
    private readonly handling: Handling,
  ) {
    this.window = new BatchWindow(ctx.keys, ctx.opts.maxBatch);
  }

  /** Tears the pipeline down: no drain starts after this, and the armed watch is cancelled. */
  halt(): void {
    this.subscription?.unsubscribe();
    this.disarm();
  }

  start(): void {
    this.subscription = this.wake$
      .pipe(concatMap(() => defer(() => this.ctx.track(this.drain()))))
      .subscribe({ error: (error) => this.ctx.emit({ type: 'consumer-error', error }) });
    this.wake$.next();
  }

  private async drain(): Promise<void> {
    while (!this.ctx.isStopped) {
      let step: Awaited<ReturnType<Consumer['step']>>;
      try {
        step = await this.step();
      } catch (error) {
        if (this.ctx.isStopped) return;
        // The backend is gone, or another process killed the server (its state is deleted): stop, as
        // upstream's gen_server crashes on mod_state_not_found, instead of retrying for ever.
        if (error instanceof DgenError && (error.code === 'BACKEND_CLOSED' || error.code === 'NOT_FOUND'))
          return void this.ctx.stop(error);
        this.ctx.emit({ type: 'consumer-error', error });
        await delay(50);
        continue;
      }
      if (step.type === 'wait') return this.arm(step.watch, step.retryAt);
      if (this.handling.cacheMisses > 0) await delay(Math.min(2 ** (this.handling.cacheMisses - 1), 50));
    }
  }

  /**
   * One step, in three phases, so that the write lock is held only for writing (a slow handler holds
   * up no other server on the backend, and a remote backend sees one short transaction):
   * 1. read, from a snapshot: the lock, a batch at the head of the queue, the state;
   * 2. run the handlers on it, outside any transaction (planBatch);
   * 3. in a transaction, check that what was read still holds (lock free, the same items at the head,
   *    the same state version) and write the effects: pops, replies, the state once — or, if anything
   *    changed (another consumer, a lock), write nothing and start over, as an optimistic transaction
   *    re-runs its body. Handlers run again in that case, as after any transaction retry.
   * With nothing to handle, a transaction arms a watch on the queue instead.
   */
  private async step(): Promise<Step> {
    const keys = this.ctx.keys;
    const seen = await this.ctx.tenant.read(async (tx) => {
      const lease = await ConsumerLease.read(tx, keys);
      const standBy = ConsumerLease.heldByOther(lease, this.ctx.owner);
      if (standBy !== undefined) return { standBy, items: undefined };
      const lockRec = await LockRecords.read(tx, keys);
      if (lockRec && lockRec.leaseUntil > Date.now()) return undefined;
      const items = await this.window.take(tx);
      return items.length === 0 ? undefined : { items, loaded: await this.handling.load(tx) };
    });
    if (seen && seen.items === undefined) return this.standBy();
    if (!seen) return this.idle();
    const plan = await this.planBatch(seen.items, seen.loaded.state);
    if ('fault' in plan) {
      await recordFailedAttempt(this.ctx, seen.items[0].key, seen.items[0].item, plan.fault);
      return { type: 'handled' };
    }
    let blame = 0; // the item whose effects were written last: the one to blame if the commit fails
    let expired: { owner: string } | undefined;
    let r: StepResult | 'stale';
    const began = Date.now(); // ops: the start of the handle spans
    let writing = false; // inside the body, writing effects: an error there is the message's, not the backend's
    try {
      r = await this.ctx.tenant.transact(async (tx): Promise<StepResult | 'stale'> => {
        blame = 0;
        writing = false;
        const lease = await ConsumerLease.read(tx, keys);
        if (ConsumerLease.heldByOther(lease, this.ctx.owner) !== undefined) return 'stale';
        const lockRec = await LockRecords.read(tx, keys);
        if (lockRec && lockRec.leaseUntil > Date.now()) return 'stale';
        // One key past the batch: whether it empties the queue, as of this transaction.
        const head = await DurableQueue.peekKeys(tx, keys, plan.steps.length + 1);
        if (head.length < plan.steps.length || plan.steps.some((p, i) => !p.key.equals(head[i])))
          return 'stale'; // another consumer took them
        const version = await this.ctx.state.readVersion(tx);
        if (!version || !version.equals(seen.loaded.version)) return 'stale';
        if (plan.view.hasReads && !(await plan.view.holds(tx))) return 'stale'; // a timer fired, or was set
        expired = lockRec; // its holder died: the lease ran out
        if (lockRec) tx.clear(keys.lock);
        ConsumerLease.hold(tx, keys, lease, this.ctx.owner);
        tx.clear(keys.attempts);
        this.sweepAbandonedCalls(tx);
        writing = true;
        const done: Array<Outcome | Skipped> = [];
        let last: { outcome: Outcome; state: unknown } | undefined;
        let state = seen.loaded.state; // as the batch leaves it (handlers, and an @OnDeadLetter)
        let replyBytes = 0;
        let written = 0;
        for (let i = 0; i < plan.steps.length; i++) {
          if (i > 0 && replyBytes >= BATCH_REPLY_BYTES) break;
          blame = i;
          const p = plan.steps[i];
          DurableQueue.pop(tx, keys, p.key);
          written = i + 1;
          if ('skipped' in p) {
            if (p.item.kind === 'call') await CallChannel.answer(tx, keys, p.item.from, toRecord(p.skipped));
            // ops hook: store the letter and run @OnDeadLetter on the batch's state (planBatch puts such
            // a cast alone in its batch when the class has one, so no planned state follows it)
            else
              state = await deadLetterIn(
                tx,
                this.ctx,
                { msg: p.item.msg, error: p.skipped.message, attempts: 0 },
                { state },
              );
            done.push({ skipped: p.skipped, msg: p.item.msg, call: p.item.kind === 'call' });
            continue;
          }
          p.outcome.replyBytes = await this.handling.writeEffects(tx, p.outcome);
          replyBytes += p.outcome.replyBytes;
          done.push(p.outcome);
          last = p;
          state = p.state;
        }
        if (state !== seen.loaded.state) {
          this.ctx.state.write(tx, seen.loaded.state, state);
          // (an @OnDeadLetter changed the state: the cache just misses)
          if (last && last.state === state) last.outcome.stamp = this.handling.stampOf(tx);
        }
        writing = false;
        // The batch emptied the queue: arm the next wake-up in this same transaction rather than in a
        // transaction of its own (one commit per batch, and one round trip less on remote backends).
        if (written === head.length) {
          await this.ctx.timers.observe(tx); // the next timer due, as of the watch (src/timers)
          return { done, wait: DurableQueue.watchPush(tx, keys) };
        }
        return { done };
      });
    } catch (error) {
      const failed = plan.steps[blame];
      const fault = writing ? itemFault(error) : isItemFault(error) ? error : undefined;
      if (!failed || !fault || this.ctx.isStopped) throw error;
      // Not the head: nothing of the batch committed; retry the items before it, then it alone.
      if (blame > 0) this.window.suspectItem(failed.key);
      else await recordFailedAttempt(this.ctx, failed.key, failed.item, fault);
      return { type: 'handled' };
    }
    if (r === 'stale') return { type: 'handled' };
    this.leaseHeld = true;
    if (expired) this.ctx.emit({ type: 'lock-expired', owner: expired.owner });
    if (r.done) traceBatch(this.ctx, began, seen.items, r.done); // ops hook: telemetry (src/telemetry/spans.ts)
    return this.finish(r);
  }

  /**
   * Runs the handlers of a batch on `state`, in order, outside any transaction. It stops after a `lock`
   * or `stop` (what follows must wait for them) and after BATCH_MS of handler time. A handler that fails
   * (or outlasts the transaction time limit) ends the batch before its item — or, at the head, is the
   * fault to count against that item.
   */
  private async planBatch(items: HeadItem[], state: unknown): Promise<Plan | { fault: DgenError }> {
    const steps: Plan['steps'] = [];
    const view = this.handling.timerView();
    const started = performance.now();
    for (let i = 0; i < items.length; i++) {
      if (i > 0 && performance.now() - started >= BATCH_MS) return { steps, view };
      const { key, item } = items[i];
      const method = findHandler(this.ctx.def, item.kind, item.msg);
      if (!method) {
        // A cast with an @OnDeadLetter handler: that handler changes the state, so it goes alone.
        const alone = item.kind === 'cast' && hasDeadLetterHandler(this.ctx.def.ctor);
        if (alone && i > 0) return { steps, view };
        steps.push({ key, item, skipped: noHandler(this.ctx.def.ctor.name, item.kind, item.msg) });
        if (alone) return { steps, view };
        continue;
      }
      const replyTo: ReplyTo = item.kind === 'call' ? { kind: 'durable', from: item.from } : { kind: 'none' };
      let outcome: Outcome;
      try {
        outcome = await this.handling.compute(item.kind, method, item.msg, replyTo, item.kind, state, view);
        if (outcome.ms > LIMITS.transactionMs) throw transactionTimedOut(LIMITS.transactionMs);
      } catch (error) {
        const fault = itemFault(error);
        if (!fault || this.ctx.isStopped) throw error;
        return i === 0 ? { fault } : { steps, view };
      }
      state = outcome.result.state;
      steps.push({ key, item, outcome, state });
      const k = returnKindOf(outcome.result);
      if (k === 'lock' || k === 'stop') return { steps, view };
    }
    return { steps, view };
  }

  /**
   * Another consumer is active: wait until its lease changes (renewed, released) or would run out.
   * While it works that is about once a second (it renews at half its lease), a read-only transaction.
   */
  private async standBy(): Promise<Step> {
    const r = await this.ctx.tenant.transact(async (tx) => {
      await this.ctx.state.assertCurrent?.(tx); // a newer version took over: step aside (versioned-state.ts)
      const until = ConsumerLease.heldByOther(await ConsumerLease.read(tx, this.ctx.keys), this.ctx.owner);
      return until === undefined ? undefined : { watch: tx.watch(this.ctx.keys.consumerLease), until };
    });
    return r ? { type: 'wait', watch: r.watch, retryAt: r.until + 1 } : { type: 'handled' };
  }

  /** Stepping down (the server stops here): another consumer may take over at once. */
  async release(): Promise<void> {
    if (!this.leaseHeld) return;
    await this.ctx.tenant
      .transact(async (tx) => {
        const lease = await ConsumerLease.read(tx, this.ctx.keys);
        if (lease?.owner === this.ctx.owner) tx.clear(this.ctx.keys.consumerLease);
      })
      .catch(() => undefined); // the backend is closed, or the server was killed: nothing to hand over
  }

  /** Nothing to handle as read: in a transaction, wait for the lock or a push — or go again if one came. */
  private async idle(): Promise<Step> {
    const keys = this.ctx.keys;
    let expired: { owner: string } | undefined;
    const r = await this.ctx.tenant.transact(async (tx): Promise<StepResult | undefined> => {
      // A newer version's start wakes this consumer (DurableQueue.notify) with nothing queued: it must
      // look at the state's version here, or it goes back to waiting, holding the consumer lease, and
      // never steps aside (versioned-state.ts). One key, read with the lock record.
      const [lockRec] = await Promise.all([LockRecords.read(tx, keys), this.ctx.state.assertCurrent?.(tx)]);
      if (lockRec && lockRec.leaseUntil > Date.now()) {
        await this.ctx.timers.observe(tx);
        return { wait: DurableQueue.watchPush(tx, keys), retryAt: lockRec.leaseUntil + 1 };
      }
      expired = lockRec;
      if (lockRec) tx.clear(keys.lock);
      this.sweepAbandonedCalls(tx);
      if ((await DurableQueue.peekKeys(tx, keys, 1)).length > 0) return undefined; // pushed meanwhile
      await this.ctx.timers.observe(tx); // the next timer due, as of the watch (src/timers)
      return { wait: DurableQueue.watchPush(tx, keys) };
    });
    if (expired) this.ctx.emit({ type: 'lock-expired', owner: expired.owner });
    return r ? this.finish(r) : { type: 'handled' };
  }

  /** After the commit: the handled messages' events, actions and replies; then wait or go on. */
  private async finish(r: StepResult): Promise<Step> {
    if (!r.done) return { type: 'wait', watch: r.wait, retryAt: r.retryAt };
    try {
      for (const d of r.done) {
        if ('result' in d) await this.handling.finish(d);
        else {
          this.ctx.emit({
            type: 'handler-failed',
            kind: d.call ? 'call' : 'cast',
            error: d.skipped,
            attempt: 1,
          });
          if (!d.call) this.ctx.emit({ type: 'dead-lettered', msg: d.msg });
        }
      }
    } catch (error) {
      r.wait?.cancel();
      throw error;
    }
    return r.wait ? { type: 'wait', watch: r.wait } : { type: 'handled' };
  }

  /**
   * At most every SWEEP_MS, in a transaction the consumer makes anyway: collect the keys of callers that
   * died waiting or whose read reply no later push of theirs cleared (see awaitDurableReply).
   */
  private sweepAbandonedCalls(tx: Transaction): void {
    if (Date.now() - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = Date.now();
    CallChannel.sweep(tx, this.ctx.keys);
  }

  private arm(watch: Watch | undefined, retryAt?: number): void {
    this.disarm();
    if (this.ctx.isStopped) return watch?.cancel(); // a handler of the last batch stopped the server
    const armed: { watch?: Watch; timer?: NodeJS.Timeout; fired?: boolean } = { watch };
    const fire = () => {
      if (armed.fired || this.ctx.isStopped) return;
      armed.fired = true;
      if (this.armed === armed) this.disarm();
      this.wake$.next();
    };
    // A watch that ends unchanged while still armed was cancelled under us (the backend closed): look
    // again, so the consumer finds BACKEND_CLOSED and stops instead of waiting for ever.
    watch?.changed.then((changed) => (changed || this.armed === armed) && fire());
    if (retryAt !== undefined) armed.timer = setTimeout(fire, Math.max(0, retryAt - Date.now()));
    this.armed = armed;
  }

  private disarm(): void {
    if (!this.armed) return;
    this.armed.watch?.cancel();
    clearTimeout(this.armed.timer);
    this.armed = undefined;
  }
}
