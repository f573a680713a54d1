import { HandlerError } from '../errors';
import { runActions } from '../kernel/actions';
import { deepFreeze } from '../kernel/freeze';
import { callHandler } from '../kernel/invoke';
import { noHandler } from '../kernel/no-handler';
import { returnKind, type NoreplyReturn, type ReplyReturn, type StopReturn } from '../returns';
import { StopSignal, type FollowerCore } from './follower-core';
import type { CallFrom } from './follower-ref';

/** A message for the follower's `@OnCall`, `@OnCast` or `@OnInfo`, in its mailbox. */
export type Message =
  | { readonly kind: 'call'; readonly msg: unknown; readonly from: CallFrom }
  | { readonly kind: 'cast'; readonly msg: unknown }
  | { readonly kind: 'info'; readonly msg: unknown };

/**
 * Handles one message with the follower's in-memory state: the handler's return replaces the state,
 * answers the caller and runs its actions in order; `stop(...)` throws StopSignal. A handler that
 * fails rejects its call (HANDLER_FAILED / BAD_RETURN) and is reported; the follower keeps going.
 */
export async function handleMessage<S>(core: FollowerCore<S>, m: Message): Promise<void> {
  core.idle.reset();
  const method = core.def.tables[m.kind].match(m.msg);
  if (method === undefined) {
    if (m.kind === 'call') core.calls.fail(m.from.id, noHandler(core.def.name, 'call', m.msg));
    else core.life.emit({ type: 'dropped', kind: m.kind, msg: m.msg });
    return;
  }
  const args = m.kind === 'call' ? [m.msg, m.from, core.state] : [m.msg, core.state];
  let result: unknown;
  try {
    result = await callHandler(core.def, core.instance, m.kind, method, args);
  } catch (error) {
    core.life.emit({ type: 'handler-failed', kind: m.kind, error, attempt: 1 });
    if (m.kind === 'call') core.calls.fail(m.from.id, error);
    if (!(error instanceof HandlerError)) throw error;
    return;
  }
  const r = result as ReplyReturn<S> | NoreplyReturn<S> | StopReturn<S>;
  core.state = deepFreeze(r.state);
  if ('timeout' in r) core.idle.reset(r.timeout);
  if (m.kind === 'call' && returnKind(r) === 'reply')
    core.calls.reply(m.from.id, (r as ReplyReturn<S>).value);
  await runActions(r.actions, core.state, (error) => core.life.emit({ type: 'action-failed', error }));
  if (returnKind(r) === 'stop') throw new StopSignal((r as StopReturn<S>).reason);
}
