import { transactionTimedOut } from '../backend/common/transaction-deadline';
import { LIMITS } from '../backend/types';
import { DgenError, HandlerError } from '../errors';
import { findHandler } from '../kernel/invoke';
import { noHandler } from '../kernel/no-handler';
import { hasDeadLetterHandler } from '../ops/on-dead-letter';
import { BATCH_MS, type HeadItem } from './batch-window';
import type { Handling, Outcome, ReplyTo } from './handling';
import type { TimerView } from './context/timer-view';
import { returnKindOf, type ServerContext } from './server-context';
import type { QueueItem } from './wire';

/** A queue item no handler takes: answered with NO_HANDLER (a call) or dead-lettered (a cast). */
export type Skipped = { skipped: Error; msg: unknown; call: boolean };

/** The handlers' outcomes for a batch read from a snapshot, to be written if the snapshot still holds. */
export interface Plan {
  /** The server's timers as its handlers were told of them (ctx.cancelTimer): checked at commit. */
  view: TimerView;
  steps: Array<
    | { key: Buffer; item: QueueItem; skipped: Error }
    | { key: Buffer; item: QueueItem; outcome: Outcome; state: unknown }
  >;
}

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
export const isItemFault = (e: unknown): e is DgenError =>
  e instanceof HandlerError || (e instanceof DgenError && ITEM_FAULTS.has(e.code));

/**
 * The fault to count against a message for `error`, thrown while its handler ran or its effects were
 * written: one of the above, or anything that is not a DgenError at all (whatever class a handler,
 * a serializer or a freeze throws); undefined for infrastructure failures, which are retried.
 */
export const itemFault = (error: unknown): DgenError | undefined =>
  isItemFault(error)
    ? error
    : error instanceof DgenError
      ? undefined
      : new HandlerError('HANDLER_FAILED', `handling a message failed: ${String(error)}`, { cause: error });

/**
 * Runs the handlers of a batch on `state`, in order, outside any transaction. It stops after a `lock`
 * or `stop` (what follows must wait for them) and after BATCH_MS of handler time. A handler that fails
 * (or outlasts the transaction time limit) ends the batch before its item — or, at the head, is the
 * fault to count against that item.
 */
export async function planBatch(
  ctx: ServerContext,
  handling: Handling,
  items: HeadItem[],
  state: unknown,
): Promise<Plan | { fault: DgenError }> {
  const steps: Plan['steps'] = [];
  const view = handling.timerView();
  const started = performance.now();
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && performance.now() - started >= BATCH_MS) return { steps, view };
    const { key, item } = items[i];
    const method = findHandler(ctx.def, item.kind, item.msg);
    if (!method) {
      // A cast with an @OnDeadLetter handler: that handler changes the state, so it goes alone.
      const alone = item.kind === 'cast' && hasDeadLetterHandler(ctx.def.ctor);
      if (alone && i > 0) return { steps, view };
      steps.push({ key, item, skipped: noHandler(ctx.def.ctor.name, item.kind, item.msg) });
      if (alone) return { steps, view };
      continue;
    }
    const replyTo: ReplyTo = item.kind === 'call' ? { kind: 'durable', from: item.from } : { kind: 'none' };
    let outcome: Outcome;
    try {
      outcome = await handling.compute(item.kind, method, item.msg, replyTo, item.kind, state, view);
      if (outcome.ms > LIMITS.transactionMs) throw transactionTimedOut(LIMITS.transactionMs);
    } catch (error) {
      const fault = itemFault(error);
      if (!fault || ctx.isStopped) throw error;
      return i === 0 ? { fault } : { steps, view };
    }
    state = outcome.result.state;
    steps.push({ key, item, outcome, state });
    const k = returnKindOf(outcome.result);
    if (k === 'lock' || k === 'stop') return { steps, view };
  }
  return { steps, view };
}
