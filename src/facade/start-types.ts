import type { FollowReturn } from '../couch/returns';
import type { FollowerRef, FollowerStartOptions } from '../couch/follower-ref';
import type { OkReturn } from '../returns';
import type { StartOptions } from '../runtime/options';
import type { TypedServerRef } from '../runtime/server-ref';

/**
 * What `Runtime.start` infers from a class, so mistakes fail to compile: a `@ChangesFollower` is a
 * class whose `@Init` returns `follow(...)`; anything else is a `@DurableServer`. The state type is the
 * one `@Init` gives to `follow(db, state)` or `ok(state)`.
 */
export type AnyClass = abstract new (...args: never[]) => object;

type InstanceOf<C> = C extends abstract new (...args: never[]) => infer I ? I : never;

/** The (awaited) return types of an instance's methods; methods typed `any` say nothing. */
type MethodReturns<T> = {
  [K in keyof T]: T[K] extends (...args: never[]) => infer R ? (0 extends 1 & R ? never : Awaited<R>) : never;
}[keyof T];

type FollowState<T> =
  MethodReturns<T> extends infer U ? (U extends FollowReturn<infer S> ? S : never) : never;
type OkState<T> = MethodReturns<T> extends infer U ? (U extends OkReturn<infer S> ? S : never) : never;

/** Whether instances of `C` are a changes follower's (an `@Init` that returns `follow(...)`). */
export type IsFollower<C> = [FollowState<InstanceOf<C>>] extends [never] ? false : true;

/** The state type of `C`'s servers: what its `@Init` starts with (`unknown` when it cannot be told). */
export type StateOf<C> =
  IsFollower<C> extends true
    ? FollowState<InstanceOf<C>>
    : [OkState<InstanceOf<C>>] extends [never]
      ? unknown
      : OkState<InstanceOf<C>>;

/** The options argument: required `{ tenant, … }` for a durable server, optional for a follower. */
export type StartOptionsArgs<C> =
  IsFollower<C> extends true ? [options?: FollowerStartOptions] : [options: StartOptions];

/** What `Runtime.start(C, …)` resolves with. */
export type RefOf<C> =
  IsFollower<C> extends true ? FollowerRef<StateOf<C>> : TypedServerRef<StateOf<C>, InstanceOf<C>>;
