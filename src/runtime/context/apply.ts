import type { Transaction } from '../../backend/types';
import { TimerStore } from '../../timers/timer-store';
import { findHandler } from '../../kernel/invoke';
import type { ServerContext } from '../server-context';
import { dueAt, type ContextAsks } from './handler-context';

/**
 * Writes, in the handler's transaction, what the handler asked of its context and the idle timeout
 * its return gave (`{ timeout }`): armed anew, or — any other message having arrived — disarmed.
 * A class without an `@OnInfo` for 'timeout' arms none. Disarming reads the key only while one may be
 * armed (ServerTimers.idleMaybe): a consumer that found none reads nothing more.
 */
export async function writeAsked(
  tx: Transaction,
  ctx: ServerContext,
  asks: ContextAsks | undefined,
  result: unknown,
): Promise<void> {
  if (asks && !asks.empty) await asks.apply(tx, ctx.keys);
  const timeout = (result as { timeout?: number } | undefined)?.timeout;
  if (timeout !== undefined && findHandler(ctx.def, 'info', 'timeout')) {
    const due = dueAt(ctx.timers.clock, timeout);
    TimerStore.armIdle(tx, ctx.keys, due);
    ctx.timers.idleMaybe = true;
    if (asks) asks.earliest = Math.min(asks.earliest ?? Infinity, due);
  } else if (ctx.timers.idleMaybe) await TimerStore.disarmIdle(tx, ctx.keys);
}

/** After the commit: this process's scheduler learns the earliest due the handler set. */
export function noteAsked(ctx: ServerContext, asks: ContextAsks | undefined): void {
  if (asks?.earliest !== undefined) ctx.timers.note(asks.earliest);
}
