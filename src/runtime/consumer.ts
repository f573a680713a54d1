import { Subject, concatMap, defer, type Subscription } from 'rxjs';
import type { Transaction, Watch } from '../backend/types';
import { DgenError, HandlerError } from '../errors';
import { BATCH_MS, BatchWindow, type HeadItem } from './batch-window';
import { CallChannel, toRecord } from './call-channel';
import { DurableQueue } from './durable-queue';
import type { Handling, Outcome, ReplyTo } from './handling';
import { findHandler, NoHandlerError } from './invoke';
import { LockRecords } from './lock-record';
import { delay, returnKindOf, type ServerContext } from './server-context';
import { decodeWire, encodeWire, type QueueItem } from './wire';
import { deadLetterIn } from '../ops/on-dead-letter';
import { traceBatch, traceFailure } from '../telemetry/spans';

/** A queue item no handler takes: answered with NO_HANDLER (a call) or dead-lettered (a cast). */
type Skipped = { skipped: Error; msg: unknown; call: boolean };

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
      if (this.handling.misses > 0) await delay(Math.min(2 ** (this.handling.misses - 1), 50));
    }
  }

  /**
   * One transaction: handle the messages at the head of the queue — a batch of them, in order, on one
   * state that is written once — or arm a watch if there is none. A batch ends early at a `lock` or
   * `stop` (what follows must wait for them), after BATCH_MS of handler time and after
   * BATCH_REPLY_BYTES of replies.
   */
  private async step(): Promise<{ type: 'handled' } | { type: 'wait'; watch: Watch; retryAt?: number }> {
    let items: HeadItem[] = [];
    let blame = 0; // the item whose handling ran last: the one to blame if the transaction fails
    let expired: { owner: string } | undefined;
    let committed = false;
    let handling = false; // inside the body, past reading the head: an error there is the message's
    const began = Date.now(); // ops: the start of the handle spans
    try {
      const r = await this.ctx.tenant.transact(async (tx) => {
        items = [];
        blame = 0;
        handling = false;
        const lockRec = await LockRecords.read(tx, this.ctx.keys);
        if (lockRec && lockRec.leaseUntil > Date.now())
          return { wait: DurableQueue.watchPush(tx, this.ctx.keys), retryAt: lockRec.leaseUntil + 1 };
        expired = lockRec; // its holder died: the lease ran out
        if (lockRec) tx.clear(this.ctx.keys.lock);
        items = await this.window.take(tx);
        if (items.length === 0) {
          this.sweepAbandonedCalls(tx);
          return { wait: DurableQueue.watchPush(tx, this.ctx.keys) };
        }
        tx.clear(this.ctx.keys.attempts);
        handling = true;
        const done: Array<Outcome | Skipped> = [];
        let last: Outcome | undefined; // the last handled message: its outcome carries the commit's stamp
        const initial = await this.handling.load(tx);
        let state = initial.state;
        const started = performance.now();
        let replyBytes = 0;
        for (let i = 0; i < items.length; i++) {
          if (i > 0 && (performance.now() - started >= BATCH_MS || replyBytes >= BATCH_REPLY_BYTES)) break;
          blame = i;
          const { key, item } = items[i];
          DurableQueue.pop(tx, this.ctx.keys, key);
          const replyTo: ReplyTo =
            item.kind === 'call' ? { kind: 'durable', from: item.from } : { kind: 'none' };
          const method = findHandler(this.ctx.def, item.kind, item.msg);
          if (!method) {
            const err = new NoHandlerError(this.ctx.def.ctor.name, item.kind, item.msg);
            if (replyTo.kind === 'durable')
              await CallChannel.answer(tx, this.ctx.keys, replyTo.from, toRecord(err));
            else
              // ops hook: store the letter and run @OnDeadLetter on the batch's state
              state = await deadLetterIn(
                tx,
                this.ctx,
                { msg: item.msg, error: err.message, attempts: 0 },
                { state },
              );
            done.push({ skipped: err, msg: item.msg, call: item.kind === 'call' });
            continue;
          }
          const o = await this.handling.runHandler(
            tx,
            item.kind,
            method,
            item.msg,
            replyTo,
            item.kind,
            state,
          );
          state = o.result.state;
          replyBytes += o.replyBytes ?? 0;
          done.push(o);
          last = o;
          const k = returnKindOf(o.result);
          if (k === 'lock' || k === 'stop') break;
        }
        if (state !== initial.state) {
          this.ctx.state.write(tx, initial.state, state);
          // (an @OnDeadLetter after the last handler changed the state: the cache just misses)
          if (last && last.result.state === state) last.stamp = this.handling.stampOf(tx);
        }
        handling = false;
        return { done };
      });
      committed = true;
      if (expired) this.ctx.emit({ type: 'lock-expired', owner: expired.owner });
      if ('wait' in r && r.wait) return { type: 'wait', watch: r.wait, retryAt: r.retryAt };
      if (r.done) traceBatch(this.ctx, began, items, r.done); // ops hook: telemetry (src/telemetry/spans.ts)
      for (const d of r.done ?? []) {
        if ('result' in d) await this.handling.finish(d);
        else {
          this.ctx.emit({ type: 'handler-failed', error: d.skipped, attempt: 1 });
          if (!d.call) this.ctx.emit({ type: 'dead-lettered', msg: d.msg });
        }
      }
      return { type: 'handled' };
    } catch (error) {
      const failed = items[blame];
      const fault = isItemFault(error)
        ? error
        : handling && !(error instanceof DgenError)
          ? new HandlerError('HANDLER_FAILED', `handling a message failed: ${String(error)}`, {
              cause: error,
            })
          : undefined;
      if (committed || !failed || !fault || this.ctx.isStopped) throw error;
      // Not the head: nothing of the batch committed; retry the items before it, then it alone.
      if (blame > 0) this.window.suspectItem(failed.key);
      else await this.recordFailure(failed.key, failed.item, fault);
      return { type: 'handled' };
    }
  }

  /** A handler failed on the head item: count the attempt; at maxAttempts move it to the dead letters. */
  private async recordFailure(key: Buffer, item: QueueItem, error: DgenError): Promise<void> {
    const attempt = await this.ctx.tenant.transact(async (tx) => {
      const raw = await tx.get(this.ctx.keys.attempts);
      const prev = raw ? decodeWire<{ key: Buffer; n: number }>(raw) : undefined;
      const n = prev && Buffer.from(prev.key).equals(key) ? prev.n + 1 : 1;
      if ((await tx.get(key)) === undefined) return n; // another consumer dealt with it
      if (n < this.ctx.opts.maxAttempts) {
        tx.set(this.ctx.keys.attempts, encodeWire({ key, n }));
        return n;
      }
      DurableQueue.pop(tx, this.ctx.keys, key);
      tx.clear(this.ctx.keys.attempts);
      await deadLetterIn(tx, this.ctx, { msg: item.msg, error: error.message, attempts: n }); // ops hook
      if (item.kind === 'call') await CallChannel.answer(tx, this.ctx.keys, item.from, toRecord(error));
      return n;
    });
    this.ctx.emit({ type: 'handler-failed', error, attempt });
    traceFailure(this.ctx, item, error, attempt, attempt >= this.ctx.opts.maxAttempts); // ops hook: telemetry
    if (attempt >= this.ctx.opts.maxAttempts) this.ctx.emit({ type: 'dead-lettered', msg: item.msg });
  }

  /** At most every SWEEP_MS, when the queue is found empty: collect the keys of callers that died waiting. */
  private sweepAbandonedCalls(tx: Transaction): void {
    if (Date.now() - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = Date.now();
    CallChannel.sweep(tx, this.ctx.keys);
  }

  private arm(watch: Watch, retryAt?: number): void {
    this.disarm();
    const armed: { watch: Watch; timer?: NodeJS.Timeout; fired?: boolean } = { watch };
    const fire = () => {
      if (armed.fired || this.ctx.isStopped) return;
      armed.fired = true;
      if (this.armed === armed) this.disarm();
      this.wake$.next();
    };
    // A watch that ends unchanged while still armed was cancelled under us (the backend closed): look
    // again, so the consumer finds BACKEND_CLOSED and stops instead of waiting for ever.
    watch.changed.then((changed) => (changed || this.armed === armed) && fire());
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
