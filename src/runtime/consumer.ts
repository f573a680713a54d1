import { Subject, concatMap, defer, type Subscription } from 'rxjs';
import type { Transaction } from '../backend/types';
import { DgenError } from '../errors';
import { BatchWindow, type HeadItem } from './batch-window';
import {
  fusesStep,
  holdsCall,
  planFused,
  stepDeferFlush,
  timedPlan,
  writeBatch,
  type Planned,
  type Unfinished,
} from './batch-writes';
import { isItemFault, itemFault, type Plan } from './plan-batch';
import { afterCommit, type Step, type StepResult } from './step-result';
import { idleStep } from './idle-step';
import { readStep } from './read-step';
import { CallChannel } from './call-channel';
import { DurableQueue } from './durable-queue';
import type { Handling } from './handling';
import { ConsumerLease } from './consumer-lease';
import { ConsumerWait } from './consumer-wait';
import { recordFailedAttempt } from './failed-attempts';
import { LockRecords } from './lock-record';
import { delay, type ServerContext } from './server-context';
import type { StoredState } from './state-storage';
import { traceBatch } from '../telemetry/spans';
import { TimerOffer, type OfferOutcome } from '../timers/timer-offer';
import { TimerStore, type AheadTimer, type DueTimer } from '../timers/timer-store';
import { TIMERS_AHEAD, timersDue } from '../timers/timers-ahead';

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
  private readonly wait: ConsumerWait;
  /** Due timers offered by the scheduler, for the next step (see TimerOffer). */
  private offered?: TimerOffer;
  /** In a drain: an offer made now is taken by its next step. */
  private draining = false;
  private readonly window: BatchWindow;
  private lastSweep = 0;
  /** This consumer has taken the consumer lease at some point (so stopping releases it). */
  private leaseHeld = false;
  /** An attempt record of this consumer's may be stored (at start: one of an earlier run's, maybe). */
  private attemptsMaybe = true;
  /** The next batch, read by the transaction that handled the previous one (see `step`). */
  private ahead?: HeadItem[];
  /** Timers due next, read by the transaction that handled the last offered ones (see timersDue). */
  private timersAhead?: AheadTimer[];
  private plainNext = false; // the next step reads its batch first (a fused step found what it does not handle)
  private readonly last = { hadCall: true, planMs: 0 }; // the last batch's: on SQLite, whether to fuse (fusesStep)

  constructor(
    private readonly ctx: ServerContext,
    private readonly handling: Handling,
  ) {
    this.window = new BatchWindow(ctx.keys, ctx.opts.maxBatch);
    this.wait = new ConsumerWait(this);
  }

  /** Starts a drain (ConsumerWait: what it waited on came). */
  wake(): void {
    this.wake$.next();
  }

  get isStopped(): boolean {
    return this.ctx.isStopped;
  }

  /** Tears the pipeline down: no drain starts after this, and the armed watch is cancelled. */
  halt(): void {
    this.subscription?.unsubscribe();
    this.wait.disarm();
    this.offered?.declined();
  }

  /**
   * The scheduler offers the timers due at `now` (TimerOffer): taken up while this consumer is idle —
   * its queue empty as of its last transaction, no lock, no other consumer active (a standby waits
   * with a timer) — by waking it, or while it is busy draining, by its next step; that step checks
   * all of it again. (Under load, a consumer is often still finishing its previous timers' handling
   * when the next fall due: declining then would send each through a fire, a wake-up and a read more,
   * the costlier path just when time is short.) An offer still open answers for itself: its step
   * takes every timer due by then, and its transaction notes the next due, which comes back here.
   */
  offerTimers(now: number): Promise<OfferOutcome> | undefined {
    if (this.offered) return this.offered.outcome;
    if (this.ctx.isStopped || !(this.draining || this.wait.onQueueOnly)) return undefined;
    const offer = new TimerOffer(now);
    this.offered = offer;
    if (!this.draining) this.wait.wakeNow();
    return offer.outcome;
  }

  start(): void {
    this.subscription = this.wake$
      .pipe(concatMap(() => defer(() => this.ctx.track(this.drain()))))
      .subscribe({ error: (error) => this.ctx.emit({ type: 'consumer-error', error }) });
    this.wake$.next();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      await this.drainSteps();
    } finally {
      this.draining = false;
    }
  }

  private async drainSteps(): Promise<void> {
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
      if (step.type === 'wait') {
        if (!this.offered) return this.wait.arm(step.watch, step.retryAt);
        step.watch?.cancel(); // timers were offered during the step: the next step takes them
        continue;
      }
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
   *    re-runs its body. Handlers run again then, as after any retry. (Nothing to handle: it arms a watch.)
   * In a long queue, step 3 also reads the next batch: the next step plans on it and the state it just
   * committed (cached), skipping step 1. One round trip less per batch on a remote backend.
   * On PostgreSQL (and SQLite after a call, see fusesStep), a step with nothing read ahead is one
   * transaction: step 1's reads, the handlers if quick (else they finish outside, then step 3), the effects.
   */
  private async step(): Promise<Step> {
    const ahead = this.ahead;
    this.ahead = undefined;
    let offer = this.offered;
    this.offered = undefined;
    try {
      const cached = this.handling.cachedState;
      const fuses = fusesStep(this.ctx.tenant.backend.kind, this.last);
      const usual = offer || !this.window.plain || this.plainNext || !fuses;
      this.plainNext = false;
      const plain = cached && this.window.plain;
      const early = offer && plain && !ahead ? timersDue(this.timersAhead, offer.now) : undefined;
      this.timersAhead = undefined; // for the next step only
      if (!(ahead && cached) && !usual) return await this.handle('fused');
      const seen =
        ahead && plain && !offer
          ? { items: ahead, loaded: cached, due: undefined }
          : early && cached
            ? { items: early, loaded: cached, due: early }
            : await this.read(offer);
      if (seen && seen.items === undefined) return await this.standBy();
      if (!seen) return await this.idle();
      const step = await this.handle(
        { items: seen.items, loaded: seen.loaded },
        offer && seen.due && { offer, due: seen.due },
      );
      // Timers read ahead but not taken (something changed): the next step reads them (step 1).
      if (early && offer?.open && !this.offered) [this.offered, offer] = [offer, undefined];
      // Queued messages went first: the offer is the next step's (a few times: then they are fired).
      if (
        offer &&
        !seen.due &&
        !(step.type === 'wait' && step.retryAt !== undefined) &&
        !this.offered &&
        offer.passOn()
      ) {
        this.offered = offer;
        offer = undefined;
      }
      return step;
    } finally {
      // Not taken (a no-op if it was): declined, unless an offer made during the step covers it.
      if (offer && this.offered && this.offered !== offer) offer.follow(this.offered);
      else offer?.declined();
    }
  }

  /** Step 1 (readStep): the lease, the lock, a batch and the state, from a snapshot — or due timers. */
  private read(offer?: TimerOffer) {
    return readStep(this.ctx, this.handling, this.window, offer);
  }

  /**
   * Steps 2 and 3 for the batch `items`, read with the state `loaded` (and planned already if `plan`):
   * queue items, or the offered timers `taken.due` (the same items), deleted instead of popped, if the
   * queue is still empty. 'fused': steps 1 to 3 in one transaction instead (see FUSED_MS); what it
   * cannot handle so (another consumer, a lock, an empty queue, slow handlers) goes the usual way.
   */
  private async handle(
    given: { items: HeadItem[]; loaded: StoredState; plan?: Planned } | 'fused',
    taken?: { offer: TimerOffer; due: DueTimer[] },
  ): Promise<Step> {
    const keys = this.ctx.keys;
    const fused = given === 'fused';
    let seen = fused ? undefined : { items: given.items, loaded: given.loaded };
    let plan: Plan | undefined;
    if (!fused) {
      const planned =
        given.plan ?? (await timedPlan(this.ctx, this.handling, given.items, given.loaded.state, this.last));
      if ('fault' in planned) {
        // A due timer's failures are counted once it is in the queue: the offer is declined, it fires.
        if (!taken) await this.recordFailure(given.items[0], planned.fault);
        return { type: 'handled' };
      }
      plan = planned;
    }
    let next: HeadItem[] | undefined;
    let slow: Unfinished | undefined; // a fused attempt's handlers, slow (or failed): finished outside it
    let timersAhead: AheadTimer[] | undefined;
    let blame = 0; // the item whose effects were written last: the one to blame if the commit fails
    let expired: { owner: string } | undefined;
    let r: StepResult | 'stale';
    const began = Date.now(); // ops: the start of the handle spans
    let writing = false; // inside the body, writing effects: an error there is the message's, not the backend's
    try {
      const deferFlush = stepDeferFlush(this.ctx.tenant.backend.kind, () => plan, fused);
      r = await this.ctx.tenant.transact(
        async (tx): Promise<StepResult | 'stale'> => {
          blame = 0;
          writing = false;
          next = undefined;
          slow = undefined;
          timersAhead = undefined;
          if (fused) [plan, seen] = [undefined, undefined];
          // Every read this transaction most likely makes, sent at once (one round trip on a remote
          // backend): the checks below, the callers' markers, and the timers (needed if the batch
          // empties the queue, as it usually does).
          let markers = (plan?.steps ?? []).map((p) =>
            p.item.kind === 'call' ? CallChannel.marker(tx, keys, p.item.from) : undefined,
          );
          for (const m of markers) m?.catch(() => undefined); // awaited below, or the attempt failed anyway
          const offered = plan && taken?.due.slice(0, plan.steps.length);
          const [lease, lockRec, head, version, timers] = await Promise.all([
            ConsumerLease.read(tx, keys),
            LockRecords.read(tx, keys),
            // Past the batch: whether it empties the queue, as of this transaction, and the next batch.
            // (not decoded: the batch's own items are compared by key only; `next` decodes the rest)
            DurableQueue.peekRows(tx, keys, (plan?.steps.length ?? this.window.limit) + this.window.limit),
            this.ctx.state.readVersion(tx),
            // Offered timers: whether they are still there, unchanged, and the next due past them.
            offered ? TimerStore.checkTaken(tx, keys, offered, TIMERS_AHEAD) : this.ctx.timers.read(tx),
          ]);
          if (ConsumerLease.heldByOther(lease, this.ctx.owner) !== undefined) return 'stale';
          if (lockRec && lockRec.leaseUntil > Date.now()) return 'stale';
          if (!plan) {
            // Fused: this transaction's reads are step 1's, and its handlers run on them now. What they
            // read cannot change before the commit (or the commit fails), so nothing needs checking.
            if (head.length === 0 || !version) return 'stale';
            const got = await planFused(
              tx,
              this.ctx,
              this.handling,
              head.slice(0, this.window.limit),
              version,
              typeof deferFlush === 'boolean' ? !deferFlush : undefined, // chosen at the start (stepDeferFlush)
              this.last,
            );
            if ('planned' in got) {
              slow = got;
              return 'stale';
            }
            [plan, seen] = [got.plan, got.seen];
            // Markers read only for callers that may have given up (see CallChannel.markerIfDue).
            markers = plan.steps.map((p) =>
              p.item.kind === 'call' ? CallChannel.markerIfDue(tx, keys, p.item.from) : undefined,
            );
            for (const m of markers) m?.catch(() => undefined);
          } else if (offered) {
            // A message came first (it goes first), or the timers fired, were cancelled or replaced.
            if (head.length > 0 || !('unchanged' in timers) || !timers.unchanged) return 'stale';
          } else if (head.length < plan.steps.length || plan.steps.some((p, i) => !p.key.equals(head[i].key)))
            return 'stale'; // another consumer took them
          if (!version || !version.equals(seen!.loaded.version)) return 'stale';
          // Whether an idle timeout is stored, as of this transaction: else no handler's effects need to
          // read its key to disarm it (one round trip per message in a long drain, see writeAsked).
          this.ctx.timers.idleMaybe = timers.idle;
          if (plan.view.hasReads && !(await plan.view.holds(tx))) return 'stale'; // a timer fired, or was set
          if (offered) TimerStore.deleteTaken(tx, keys, offered);
          expired = lockRec; // its holder died: the lease ran out
          if (lockRec) tx.clear(keys.lock);
          ConsumerLease.hold(tx, keys, lease, this.ctx.owner);
          // A failed attempt names its queue item, so one left by an item gone is ignored: it is cleared
          // only while this consumer may have left one (one statement less per handling otherwise; an
          // attempt another consumer recorded is left, as harmless), and never for offered timers.
          if (!offered && this.attemptsMaybe) tx.clear(keys.attempts);
          this.sweepAbandonedCalls(tx);
          writing = true;
          const { done, written } = await writeBatch(tx, this.ctx, this.handling, {
            steps: plan.steps,
            before: seen!.loaded.state,
            markers,
            pop: !taken,
            blame: (i) => (blame = i),
          });
          writing = false;
          if (offered) {
            this.ctx.timers.observed(timers); // the next due, past the timers taken
            if (!timers.idle && 'ahead' in timers) timersAhead = timers.ahead as AheadTimer[];
            return { done, wait: DurableQueue.watchPush(tx, keys) };
          }
          // The batch emptied the queue: arm the next wake-up in this same transaction rather than in a
          // transaction of its own (one commit per batch, and one round trip less on remote backends).
          if (written === head.length) {
            this.ctx.timers.observed(timers); // the next timer due, as of the watch (src/timers)
            return { done, wait: DurableQueue.watchPush(tx, keys) };
          }
          next = DurableQueue.decoded(head.slice(written, written + this.window.limit));
          return { done };
        },
        { deferFlush },
      );
    } catch (error) {
      const failed = plan?.steps[blame];
      const fault = writing ? itemFault(error) : isItemFault(error) ? error : undefined;
      if (!failed || !fault || this.ctx.isStopped) throw error;
      if (taken) return { type: 'handled' }; // declined: the timers fire into the queue, where attempts count
      // Not the head: nothing of the batch committed; retry the items before it, then it alone.
      if (blame > 0) this.window.suspectItem(failed.key);
      else await this.recordFailure(failed, fault);
      return { type: 'handled' };
    }
    if (slow) {
      const s: NonNullable<typeof slow> = slow;
      return this.handle({ items: s.items, loaded: s.loaded, plan: await s.planned });
    }
    if (r === 'stale') {
      if (fused) this.plainNext = true; // what the fused step found goes the usual way
      return { type: 'handled' };
    }
    if (!taken) this.attemptsMaybe = false; // cleared, if it had to be
    this.last.hadCall = plan ? holdsCall(plan) : true;
    taken?.offer.taken();
    this.timersAhead = timersAhead?.length ? timersAhead : undefined;
    this.leaseHeld = true;
    this.ahead = next;
    if (expired) this.ctx.emit({ type: 'lock-expired', owner: expired.owner });
    if (r.done) traceBatch(this.ctx, began, seen!.items, r.done); // ops hook: telemetry (src/telemetry/spans.ts)
    return afterCommit(this.ctx, this.handling, r);
  }

  /** Another consumer is active: wait until its lease changes or would run out (ConsumerLease.waitOut). */
  private async standBy(): Promise<Step> {
    const r = await ConsumerLease.waitOut(this.ctx);
    return r ? { type: 'wait', watch: r.watch, retryAt: r.until + 1 } : { type: 'handled' };
  }

  /** Stepping down (the server stops here): another consumer may take over at once. */
  async release(): Promise<void> {
    if (this.leaseHeld) await ConsumerLease.release(this.ctx);
  }

  /** Nothing to handle as read: wait for the lock or a push, or go again if one came (idleStep). */
  private idle(): Promise<Step> {
    return idleStep(this.ctx, this.handling, (tx) => this.sweepAbandonedCalls(tx));
  }

  /** Counts a failed attempt at the head item (which a later successful handling then clears). */
  private recordFailure(head: HeadItem, fault: DgenError): Promise<void> {
    this.attemptsMaybe = true;
    return recordFailedAttempt(this.ctx, head.key, head.item, fault);
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
}
