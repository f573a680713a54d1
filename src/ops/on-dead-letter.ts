import 'reflect-metadata';
import { unboundVersionstamp } from '../backend/keys';
import type { Transaction } from '../backend/types';
import { DefinitionError, HandlerError } from '../errors';
import { returnKind, type NoreplyReturn } from '../returns';
import { deepFreeze } from '../kernel/freeze';
import type { ServerContext } from '../runtime/server-context';
import { encodeWire, type DeadLetter } from '../runtime/wire';
import { ContextAsks } from '../runtime/context/handler-context';
import { TimerView } from '../runtime/context/timer-view';
import { noteAsked, writeAsked } from '../runtime/context/apply';

const KEY = Symbol.for('dgen-ts:on-dead-letter');

/**
 * Marks the method called in the transaction that dead-letters a message, as upstream dgen's
 * `handle_dead_letter`: `(letter, state) => noreply(state)`. The state it returns is written in that
 * same transaction. If it throws or returns anything else, the message is dead-lettered all the same,
 * the state is left as it was and a `handler-failed` event says why (a failing dead-letter handler
 * must not wedge the queue it is there to unblock).
 */
export function OnDeadLetter(): MethodDecorator {
  return (target: object, method: string | symbol, descriptor?: PropertyDescriptor) => {
    if (typeof target === 'function' || typeof descriptor?.value !== 'function')
      throw new DefinitionError(
        'BAD_DEFINITION',
        `@OnDeadLetter is on ${String(method)}, which is not an instance method`,
      );
    const ctor = target.constructor;
    const existing = Reflect.getOwnMetadata(KEY, ctor) as string | symbol | undefined;
    if (existing !== undefined && existing !== method)
      throw new DefinitionError(
        'BAD_DEFINITION',
        `class ${ctor.name} has two @OnDeadLetter methods (${String(existing)} and ${String(method)})`,
      );
    Reflect.defineMetadata(KEY, method, ctor);
  };
}

const handlerOf = (ctor: object): string | symbol | undefined =>
  Reflect.getMetadata(KEY, ctor) as string | symbol | undefined;

/** Whether the class has an `@OnDeadLetter` handler (which may change the state). */
export const hasDeadLetterHandler = (ctor: object): boolean => handlerOf(ctor) !== undefined;

/**
 * Stores `letter` as a dead letter in `tx` and runs the class's `@OnDeadLetter` handler, if any.
 * Inside a consumer batch, `batch` holds the batch's current state and the new one is returned (the
 * batch writes it); otherwise the state is read and written here. Returns the state after the handler.
 */
export async function deadLetterIn(
  tx: Transaction,
  ctx: ServerContext,
  letter: DeadLetter,
  batch?: { state: unknown },
): Promise<unknown> {
  tx.setVersionstampedKey([...ctx.keys.tuid, 'd', unboundVersionstamp()], encodeWire(letter));
  const method = handlerOf(ctx.def.ctor);
  if (method === undefined) return batch?.state;
  const stored = batch ? undefined : await ctx.state.read(tx);
  const previous = batch ? batch.state : stored?.state;
  if (!batch && !stored) return undefined; // killed meanwhile: nothing to hand the handler
  let next: unknown;
  // Its HandlerContext, written here with the letter; it runs inside `tx`, so ctx.cancelTimer reads there.
  const view = new TimerView(ctx.keys, (fn) => fn(tx));
  const asks = new ContextAsks(ctx.timers.clock, ctx.tenant, view);
  try {
    const fn = (ctx.instance as Record<string | symbol, (...a: unknown[]) => unknown>)[method];
    const result = await fn.call(ctx.instance, deepFreeze({ ...letter }), previous, asks);
    await view.settled(); // a timer read it started and did not await: done before the commit
    if (returnKind(result) !== 'noreply')
      throw new HandlerError(
        'BAD_RETURN',
        `${ctx.def.ctor.name}.${String(method)} must return noreply(state) from @OnDeadLetter`,
      );
    next = deepFreeze((result as NoreplyReturn<unknown>).state);
    await writeAsked(tx, ctx, asks, result);
  } catch (error) {
    const e =
      error instanceof HandlerError
        ? error
        : new HandlerError(
            'HANDLER_FAILED',
            `${ctx.def.ctor.name}.${String(method)} threw: ${String(error)}`,
            {
              cause: error,
            },
          );
    ctx.emit({ type: 'handler-failed', kind: 'dead-letter', error: e, attempt: 1 });
    return previous;
  }
  if (!batch && next !== previous) ctx.state.write(tx, previous, next);
  void tx.getVersionstamp().then(
    () => noteAsked(ctx, asks),
    () => undefined,
  );
  return next;
}
