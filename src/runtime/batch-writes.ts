import type { BackendKind, KeyValue, Transaction } from '../backend/types';
import type { DgenError } from '../errors';
import { deadLetterIn } from '../ops/on-dead-letter';
import { BATCH_MS } from './batch-window';
import { CallChannel, toRecord } from './call-channel';
import { DurableQueue } from './durable-queue';
import type { Handling, Outcome } from './handling';
import { planBatch, type Plan, type Skipped } from './plan-batch';
import type { HeadItem } from './batch-window';
import type { StoredState } from './state-storage';
import type { ServerContext } from './server-context';

/** Reply bytes after which a batch takes no further item (the transaction limit is 10 MB). */
const BATCH_REPLY_BYTES = 1_000_000;

/**
 * How long a fused step's handlers may run inside its transaction (see `fusesSteps`); slower ones finish
 * outside it, and their effects are written as in the usual step 3.
 */
export const FUSED_MS = BATCH_MS;

/**
 * Whether a consumer woken with nothing read ahead makes steps 1 to 3 (see Consumer.step) one
 * transaction, with the handlers run inside it when they are quick, so a call's handling makes one
 * transaction (and on a remote backend 2 round trips instead of 3) and what it read needs no checking
 * again:
 * - PostgreSQL: always. An open SERIALIZABLE transaction holds no lock while it waits (its reads take
 *   none that block, its writes are buffered to the commit), so handlers may take up to FUSED_MS in it.
 * - SQLite: when the last batch held a call and its handlers took under QUICK_PLAN_MS (`last`): someone
 *   waits for the reply, and the flush it needs is chosen as the transaction begins (its `synchronous`
 *   setting cannot change inside one). The transaction holds the file's write lock, so only handlers
 *   that finish without waiting for I/O or a timer run in it (see `quickEnough`), and after a handling
 *   that computed for long (handlers, or a state read and decoded whole), the next step goes the usual
 *   way. A batch of casts goes the usual way, so that a stream of them batches: its step 1 reads beside
 *   the next pushes instead of holding their lock.
 * FoundationDB's transactions are short-lived by design (5 s), and the memory backend's cost nothing to
 * split: there the handlers run between two transactions.
 */
export const fusesStep = (kind: BackendKind, last: LastBatch): boolean =>
  kind === 'postgres' || (kind === 'sqlite' && last.hadCall && last.planMs < QUICK_PLAN_MS);

/** What a consumer's next step goes by (see fusesStep): its last batch's kind and handling time. */
export interface LastBatch {
  hadCall: boolean;
  planMs: number;
}

/** Handling time (ms) under which a batch counts as quick: SQLite may handle the next inside its lock. */
export const QUICK_PLAN_MS = 1;

/** Whether a batch acknowledges something (a call's reply): its commit must reach the disk first. */
export const holdsCall = (plan: Plan): boolean => plan.steps.some((p) => p.item.kind === 'call');

/**
 * A consumer step's `deferFlush` (TransactOptions): a batch without calls acknowledges nothing (casts,
 * infos, timers), so its commit need not reach the disk before the next step's (a power cut has it
 * handled again). A fused step reads its batch inside its transaction: PostgreSQL decides the flush at
 * the commit, by its attempt's plan; SQLite's (see fusesStep) is flushed, and a batch it finds
 * without a call goes the usual way instead (see planFused). Either way a batch's handling is flushed
 * if and only if it holds a call.
 */
export function stepDeferFlush(
  kind: BackendKind,
  plan: () => Plan | undefined,
  fused: boolean,
): boolean | (() => boolean) {
  const acknowledgesNothing = () => {
    const p = plan();
    return p !== undefined && !holdsCall(p);
  };
  if (!fused) return acknowledgesNothing();
  return kind === 'postgres' ? acknowledgesNothing : false;
}

/** What planBatch gives: a plan, or the head item's fault. */
export type Planned = Plan | { fault: DgenError };
/** A fused step's batch whose plan did not finish in time (or failed): see `planFused`. */
export type Unfinished = { items: HeadItem[]; loaded: StoredState; planned: Promise<Planned> };

/**
 * A fused step's plan: the batch `rows` (read in `tx`) decoded, the state as of `version` (cached, or
 * read in `tx`), and the handlers run on them (the time of it all noted in `last`) if they are quick
 * enough — else, or if the head item failed, or if the transaction's flush was chosen when it began
 * (`flushes`, see stepDeferFlush) and the batch needs the other, the plan (maybe still under way) for
 * the usual step 3 outside it.
 */
export async function planFused(
  tx: Transaction,
  ctx: ServerContext,
  handling: Handling,
  rows: KeyValue[],
  version: Buffer,
  flushes: boolean | undefined,
  last: LastBatch,
): Promise<{ plan: Plan; seen: { items: HeadItem[]; loaded: StoredState } } | Unfinished> {
  const began = performance.now(); // the state's load counts too: a state read whole is decoded here
  const items = DurableQueue.decoded(rows);
  const loaded = await handling.load(tx, Promise.resolve(version));
  const planned = planBatch(ctx, handling, items, loaded.state);
  const quick = await quickEnough(planned, ctx.tenant.backend.kind);
  last.planMs = quick ? performance.now() - began : Infinity; // unfinished: slow
  if (!quick || 'fault' in quick || (flushes !== undefined && flushes !== holdsCall(quick)))
    return { items, loaded, planned };
  return { plan: quick, seen: { items, loaded } };
}

/** planBatch, noting its handlers' time in `last` (see fusesStep). */
export async function timedPlan(
  ctx: ServerContext,
  handling: Handling,
  items: HeadItem[],
  state: unknown,
  last: LastBatch,
): Promise<Planned> {
  const began = performance.now();
  const planned = await planBatch(ctx, handling, items, state);
  last.planMs = performance.now() - began;
  return planned;
}

/**
 * `p`, or undefined if it is not settled in time: within FUSED_MS where the transaction holds no lock
 * (PostgreSQL), else before the event loop's next turn (a handler that waits for nothing — no I/O, no
 * timer — settles in microtasks; one that waits lets the lock go at once).
 */
function quickEnough<T>(p: Promise<T>, kind: BackendKind): Promise<T | undefined> {
  let cancel = (): void => undefined;
  const late = new Promise<undefined>((resolve) => {
    const done = () => resolve(undefined);
    if (kind === 'postgres') {
      const timer = setTimeout(done, FUSED_MS);
      cancel = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(done);
      cancel = () => clearImmediate(immediate);
    }
  });
  return Promise.race([p, late]).finally(cancel);
}

/**
 * Writes a planned batch's effects in a consumer transaction: pops (unless `pop` is false: offered
 * timers), replies, dead letters, then the state once. Stops taking items past BATCH_REPLY_BYTES of
 * replies. `blame` hears the index of the item being written (the one to blame if writing fails).
 */
export async function writeBatch(
  tx: Transaction,
  ctx: ServerContext,
  handling: Handling,
  batch: {
    steps: Plan['steps'];
    before: unknown;
    markers: Array<Promise<Buffer | undefined> | undefined>;
    pop: boolean;
    blame: (i: number) => void;
  },
): Promise<{ done: Array<Outcome | Skipped>; written: number }> {
  const { steps, before, markers } = batch;
  const keys = ctx.keys;
  const done: Array<Outcome | Skipped> = [];
  let last: { outcome: Outcome; state: unknown } | undefined;
  let state = before; // as the batch leaves it (handlers, and an @OnDeadLetter)
  let replyBytes = 0;
  let written = 0;
  for (let i = 0; i < steps.length; i++) {
    if (i > 0 && replyBytes >= BATCH_REPLY_BYTES) break;
    batch.blame(i);
    const p = steps[i];
    if (batch.pop) DurableQueue.pop(tx, keys, p.key);
    written = i + 1;
    if ('skipped' in p) {
      if (p.item.kind === 'call')
        await CallChannel.answer(tx, keys, p.item.from, toRecord(p.skipped), markers[i]);
      // ops hook: store the letter and run @OnDeadLetter on the batch's state (planBatch puts such
      // a cast alone in its batch when the class has one, so no planned state follows it)
      else
        state = await deadLetterIn(
          tx,
          ctx,
          { msg: p.item.msg, error: p.skipped.message, attempts: 0 },
          { state },
        );
      done.push({ skipped: p.skipped, msg: p.item.msg, call: p.item.kind === 'call' });
      continue;
    }
    p.outcome.replyBytes = await handling.writeEffects(tx, p.outcome, markers[i]);
    replyBytes += p.outcome.replyBytes;
    done.push(p.outcome);
    last = p;
    state = p.state;
  }
  if (state !== before) {
    ctx.state.write(tx, before, state);
    // (an @OnDeadLetter changed the state: the cache just misses)
    if (last && last.state === state) last.outcome.stamp = handling.stampOf(tx);
  }
  return { done, written };
}
