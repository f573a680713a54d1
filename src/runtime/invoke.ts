import type { HandlerRole } from '../decorators/metadata';
import { DgenError, HandlerError } from '../errors';
import type { ClassDefinition } from '../registry/class-definition';
import { returnKind, type ReturnKind } from '../returns';

const ALLOWED: Record<HandlerRole, readonly ReturnKind[]> = {
  init: ['ok'],
  call: ['reply', 'noreply', 'lock', 'stop'],
  cast: ['noreply', 'lock', 'stop'],
  info: ['noreply', 'stop'],
  locked: ['reply', 'noreply', 'stop'],
  change: ['ok', 'stop'],
  error: ['retry', 'stop'],
  terminate: [],
};

const HINT: Record<HandlerRole, string> = {
  init: 'ok(state) or ok(state, tuid)',
  call: 'reply(value, state), noreply(state), lock(state) or stop(reason, state)',
  cast: 'noreply(state), lock(state) or stop(reason, state)',
  info: 'noreply(state) or stop(reason, state)',
  locked: 'reply(value, state), noreply(state) or stop(reason, state)',
  change: 'ok(state) or stop(reason, state)',
  error: 'retry(state, waitMs?) or stop(reason, state)',
  terminate: 'anything (it is ignored)',
};

/** The method that handles `msg` in `role`, or undefined. */
export function findHandler(
  def: ClassDefinition,
  role: Exclude<HandlerRole, 'init' | 'terminate'>,
  msg: unknown,
) {
  return def.tables[role].match(msg);
}

/**
 * Calls a handler and checks what it returned. A handler that throws is wrapped in HANDLER_FAILED
 * (cause kept); a wrong return is BAD_RETURN naming the handler and what it should return.
 */
export async function invokeHandler<R>(
  def: ClassDefinition,
  instance: object,
  role: HandlerRole,
  method: string | symbol,
  args: unknown[],
): Promise<R> {
  const where = `${def.ctor.name}.${String(method)}`;
  let result: unknown;
  try {
    const fn = (instance as Record<string | symbol, (...a: unknown[]) => unknown>)[method];
    result = await fn.apply(instance, args);
  } catch (err) {
    if (err instanceof DgenError && err.code === 'TRANSACTION_FINISHED') throw err;
    const frozenHint =
      err instanceof TypeError && /read[- ]only|not extensible|frozen/i.test(err.message)
        ? ' (the state passed to handlers is frozen: return a new object instead of changing it in place)'
        : '';
    throw new HandlerError(
      'HANDLER_FAILED',
      `${where} threw: ${(err as Error)?.message ?? String(err)}${frozenHint}`,
      {
        cause: err,
      },
    );
  }
  const kind = returnKind(result);
  if (!kind || !ALLOWED[role].includes(kind))
    throw new HandlerError(
      'BAD_RETURN',
      `${where} returned ${kind ? `${kind}(…)` : describe(result)}; a ${role} handler returns ${HINT[role]}`,
    );
  return result as R;
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined (did you forget to return?)';
  if (v === null) return 'null';
  return typeof v === 'object'
    ? `a plain ${Array.isArray(v) ? 'array' : 'object'}`
    : `${typeof v} ${String(v)}`;
}
