import type { HandlerRole } from '../decorators/metadata';
import { DgenError, HandlerError } from '../errors';
import type { ClassDefinition } from '../registry/class-definition';
import { returnKind, type ReturnKind } from '../returns';

type Kind = 'server' | 'follower';

/** What each role may return, per kind of gen_server (a follower has no locks; its @Init follows). */
const ALLOWED: Record<Kind, Record<HandlerRole, readonly ReturnKind[]>> = {
  server: {
    init: ['ok'],
    call: ['reply', 'noreply', 'lock', 'stop'],
    cast: ['noreply', 'lock', 'stop'],
    info: ['noreply', 'stop'],
    locked: ['reply', 'noreply', 'stop'],
    change: [],
    error: [],
    terminate: [],
  },
  follower: {
    init: ['follow', 'stop'],
    call: ['reply', 'noreply', 'stop'],
    cast: ['noreply', 'stop'],
    info: ['noreply', 'stop'],
    locked: [],
    change: ['ok', 'stop'],
    error: ['retry', 'stop'],
    terminate: [],
  },
};

const HINT: Record<ReturnKind, string> = {
  ok: 'ok(state)',
  reply: 'reply(value, state)',
  noreply: 'noreply(state)',
  lock: 'lock(state)',
  stop: 'stop(reason, state)',
  retry: 'retry(state, waitMs?)',
  follow: 'follow(db, state, options)',
};

const ROLE_DECORATOR: Record<HandlerRole, string> = {
  init: '@Init',
  call: '@OnCall',
  cast: '@OnCast',
  info: '@OnInfo',
  locked: '@OnLocked',
  change: '@OnChange',
  error: '@OnError',
  terminate: '@OnTerminate',
};

/** The method that handles `msg` in `role`, or undefined. */
export function findHandler(
  def: ClassDefinition,
  role: Exclude<HandlerRole, 'init' | 'terminate'>,
  msg: unknown,
): string | symbol | undefined {
  return def.tables[role].match(msg);
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/**
 * Calls a handler and checks what it returned — the one way both kinds of gen_server run a handler.
 * Synchronous when the handler is (no promise per follower row on the hot path). A handler that
 * throws is HANDLER_FAILED (what it threw is the `cause`); a wrong return is BAD_RETURN naming the
 * handler and what it should return. A finished transaction's error passes through unchanged (the
 * runtime re-runs the handler).
 */
export function callHandler(
  def: ClassDefinition,
  instance: object,
  role: HandlerRole,
  method: string | symbol,
  args: readonly unknown[],
): unknown {
  let result: unknown;
  try {
    const fn = (instance as Record<string | symbol, (...a: unknown[]) => unknown>)[method];
    result = fn.apply(instance, args as unknown[]);
  } catch (err) {
    throw handlerFailed(def, role, method, err);
  }
  // a branded result (the usual, synchronous case) is never a promise: skip the thenable probe
  if (returnKind(result) === undefined && isThenable(result))
    return Promise.resolve(result).then(
      (settled) => checkReturn(def, role, method, settled),
      (err: unknown) => Promise.reject(handlerFailed(def, role, method, err)),
    );
  return checkReturn(def, role, method, result);
}

/** `callHandler`, always as a promise. */
export async function invokeHandler<R>(
  def: ClassDefinition,
  instance: object,
  role: HandlerRole,
  method: string | symbol,
  args: readonly unknown[],
): Promise<R> {
  return (await callHandler(def, instance, role, method, args)) as R;
}

/** What a handler threw, if `err` is a HANDLER_FAILED from `callHandler`; otherwise `err` itself. */
export function thrownBy(err: unknown): unknown {
  return err instanceof HandlerError && err.code === 'HANDLER_FAILED' && err.cause !== undefined
    ? err.cause
    : err;
}

function handlerFailed(
  def: ClassDefinition,
  role: HandlerRole,
  method: string | symbol,
  err: unknown,
): unknown {
  if (err instanceof DgenError && err.code === 'TRANSACTION_FINISHED') return err;
  const frozenHint =
    err instanceof TypeError && /read[- ]only|not extensible|frozen/i.test(err.message)
      ? ' (the state passed to handlers is frozen: return a new object instead of changing it in place)'
      : '';
  return new HandlerError(
    'HANDLER_FAILED',
    `${where(def, role, method)} threw: ${describeThrown(err)}${frozenHint}`,
    { cause: err },
  );
}

function checkReturn(
  def: ClassDefinition,
  role: HandlerRole,
  method: string | symbol,
  result: unknown,
): unknown {
  const allowed = ALLOWED[def.meta.kind][role];
  const kind = returnKind(result);
  if (kind !== undefined && allowed.includes(kind)) return result;
  const hint = allowed.map((k) => HINT[k]);
  const expected = hint.length > 1 ? `${hint.slice(0, -1).join(', ')} or ${hint[hint.length - 1]}` : hint[0];
  throw new HandlerError(
    'BAD_RETURN',
    `${where(def, role, method)} returned ${kind ? `${kind}(…)` : describe(result)}; it must return ${expected}`,
  );
}

function where(def: ClassDefinition, role: HandlerRole, method: string | symbol): string {
  return `${ROLE_DECORATOR[role]} ${def.ctor.name}.${String(method)}`;
}

function describeThrown(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    return String(err);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined (did you forget to return?)';
  if (v === null) return 'null';
  return typeof v === 'object'
    ? `a plain ${Array.isArray(v) ? 'array' : 'object'}`
    : `${typeof v} ${String(v)}`;
}
