import { BadArgumentError } from '../errors';
import { addHandlerMeta, type HandlerRole } from './metadata';

/** A method decorator for one handler role; with `tag` it matches `m === tag || m.type === tag`. */
export function handlerDecorator(role: HandlerRole, decorator: string, tag?: string): MethodDecorator {
  if (tag !== undefined && (typeof tag !== 'string' || tag.length === 0))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `@${decorator}(tag) takes a non-empty string tag (got ${String(tag)})`,
    );
  return (target: object, method: string | symbol, descriptor?: PropertyDescriptor) => {
    const ctor = typeof target === 'function' ? target : target.constructor;
    const misuse =
      typeof target === 'function'
        ? `@${decorator} is on static member ${String(method)}; put it on an instance method`
        : typeof descriptor?.value !== 'function'
          ? `@${decorator} is on ${String(method)}, which is not a method`
          : undefined;
    addHandlerMeta(ctor, { role, decorator, method, tag, misuse });
  };
}

/** Marks the method that builds the initial state: returns `ok(state)` or `ok(state, tuid)` (or `follow(...)`). */
export const Init = (): MethodDecorator => handlerDecorator('init', 'Init');
/** Handles `call`/`priorityCall` messages: `(msg, from, state) => reply(...) | noreply(...) | lock(...) | stop(...)`. */
export const OnCall = (tag?: string): MethodDecorator => handlerDecorator('call', 'OnCall', tag);
/** Handles `cast`/`castMany`/`priorityCast` messages: `(msg, state) => noreply(...) | lock(...) | stop(...)`. */
export const OnCast = (tag?: string): MethodDecorator => handlerDecorator('cast', 'OnCast', tag);
/** Handles `send` messages: `(msg, state) => noreply(...) | stop(...)`. */
export const OnInfo = (tag?: string): MethodDecorator => handlerDecorator('info', 'OnInfo', tag);
/**
 * Called once when this process's part of a server or follower stops (a `stop(...)` return,
 * `ref.stop()`, `Runtime.stopAll()`, a fatal error, a closed backend): `(reason, state) => unknown`.
 * Not on `kill` (the state is gone). What it returns is ignored; what it throws is reported on
 * `events$` and does not change the exit reason. As gen_server's terminate/2.
 */
export const OnTerminate = (): MethodDecorator => handlerDecorator('terminate', 'OnTerminate');
/** Runs outside a transaction after a handler returned `lock(state)`: `(ev, msg, state) => reply | noreply | stop`. */
export const OnLocked = (tag?: string): MethodDecorator => handlerDecorator('locked', 'OnLocked', tag);
