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
 * Backends on which a consumer woken with nothing read ahead makes steps 1 to 3 (see Consumer.step)
 * one transaction, with the handlers run inside it when they are quick (FUSED_MS): PostgreSQL, where
 * an open SERIALIZABLE transaction holds no lock while it waits (its reads take none that block, its
 * writes are buffered to the commit), so a call's handling costs 2 round trips instead of 3 and what
 * it read needs no checking again. Elsewhere a transaction holds a lock (SQLite, memory) or is
 * short-lived by design (FoundationDB's 5 s): the handlers run between two transactions.
 */
export const fusesSteps = (kind: BackendKind): boolean => kind === 'postgres';

/** What planBatch gives: a plan, or the head item's fault. */
export type Planned = Plan | { fault: DgenError };
/** A fused step's batch whose plan did not finish in time (or failed): see `planFused`. */
export type Unfinished = { items: HeadItem[]; loaded: StoredState; planned: Promise<Planned> };

/**
 * A fused step's plan: the batch `rows` (read in `tx`) decoded, the state as of `version` (cached, or
 * read in `tx`), and the handlers run on them if they finish within FUSED_MS — else, or if the head item
 * failed, the plan still under way, for the usual step 3 outside the transaction.
 */
export async function planFused(
  tx: Transaction,
  ctx: ServerContext,
  handling: Handling,
  rows: KeyValue[],
  version: Buffer,
): Promise<{ plan: Plan; seen: { items: HeadItem[]; loaded: StoredState } } | Unfinished> {
  const items = DurableQueue.decoded(rows);
  const loaded = await handling.load(tx, Promise.resolve(version));
  const planned = planBatch(ctx, handling, items, loaded.state);
  const quick = await within(planned, FUSED_MS);
  if (!quick || 'fault' in quick) return { items, loaded, planned };
  return { plan: quick, seen: { items, loaded } };
}

/** `p`, or undefined if it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
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
