import type { ClassDefinition } from '../registry/class-definition';
import { BadArgumentError } from '../errors';
import type { ReplyReturn } from '../returns';
import type { CallOptions } from './server-ref';
import type { HandlerContext } from './context/handler-context';

type Method = (...args: never[]) => unknown;

/** A handler's parameters without a trailing `ctx: HandlerContext` (exactly that type, not `any`). */
type WithoutCtx<P extends readonly unknown[]> = P extends [...infer R, infer L]
  ? 0 extends 1 & L
    ? P
    : [L] extends [HandlerContext]
      ? [HandlerContext] extends [L]
        ? R
        : P
      : P
  : P;
/** How many parameters a handler takes before its ctx: 3 for `(msg, from, state)`, 2 for `(msg, state)`. */
type Arity<F extends Method> = WithoutCtx<Parameters<F>>['length'];

/** What a client method takes: the handler's message, optional where a bare tag will do. */
type MessageArgs<M> = unknown extends M ? [msg?: unknown] : M extends string ? [msg?: M] : [msg: M];

/** The reply type of a call handler: what it passes to `reply(value, …)`. */
type ReplyOf<R> = Awaited<R> extends infer U ? (U extends ReplyReturn<infer _S, infer V> ? V : never) : never;

type CallMethod<F extends Method> = (
  ...args: [...MessageArgs<Parameters<F>[0]>, options?: CallOptions]
) => Promise<[ReplyOf<ReturnType<F>>] extends [never] ? unknown : ReplyOf<ReturnType<F>>>;
type CastMethod<F extends Method> = (...args: MessageArgs<Parameters<F>[0]>) => Promise<void>;

/**
 * A server's handlers as methods, typed from the class: a `(msg, from, state)` method (`@OnCall`) becomes
 * `(msg?, options?) => Promise<Reply>`, a `(msg, state)` method (`@OnCast`) `(msg?) => Promise<void>`
 * (each may take a last `ctx: HandlerContext`, which does not count).
 * Called without a message, a tagged handler is sent its tag (`ref.client.get()` sends `'get'`).
 * The message-based API (`ref.call`, `ref.cast`) stays; the client is a typed way to use it.
 */
export type Client<T> = unknown extends T
  ? UntypedClient
  : {
      readonly [
        K in keyof T as T[K] extends Method ? (Arity<T[K]> extends 2 | 3 ? K : never) : never
      ]: T[K] extends Method ? (Arity<T[K]> extends 3 ? CallMethod<T[K]> : CastMethod<T[K]>) : never;
    };

/**
 * The client of a ref whose class is not known to the compiler (`ServerRef<S>`): any method name, any
 * message. Declared as a method so that every typed client is assignable to it (parameters of methods
 * are compared both ways).
 */
export interface UntypedClient {
  readonly [method: string]: { send(msg?: unknown, options?: CallOptions): Promise<unknown> }['send'];
}

/** What a client needs of a ref: the message-based calls it is built on. */
interface Sender {
  call(msg: unknown, options?: CallOptions): Promise<unknown>;
  cast(msg: unknown): Promise<void>;
}

/** The runtime side of `ref.client`: each property is the `@OnCall`/`@OnCast` method of that name. */
export function makeClient<T>(def: ClassDefinition, ref: Sender): Client<T> {
  return new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (typeof prop === 'symbol' && prop !== Symbol.toStringTag) return undefined;
      const handler = def.messageHandlers.get(prop);
      if (!handler)
        throw new BadArgumentError(
          'BAD_ARGUMENT',
          `${def.ctor.name}.${String(prop)} is not an @OnCall or @OnCast handler, so ref.client has no such method`,
        );
      const messageOf = (args: unknown[]): unknown => {
        if (args.length > 0 && args[0] !== undefined) return args[0];
        if (handler.tag === undefined)
          throw new BadArgumentError(
            'BAD_ARGUMENT',
            `${def.ctor.name}.${String(prop)} handles untagged messages: pass the message to ref.client.${String(prop)}(msg)`,
          );
        return handler.tag;
      };
      return handler.role === 'call'
        ? (...args: unknown[]) => ref.call(messageOf(args), args[1] as CallOptions | undefined)
        : (...args: unknown[]) => ref.cast(messageOf(args));
    },
  }) as Client<T>;
}
