import type { FollowerRef, FollowerStartOptions } from '../couch/follower-ref';
import type { AnyClass, IsFollower, RefOf, StartOptionsArgs } from './start-types';
import { defineClass } from '../registry/class-definition';
import { stopAll, whereis } from '../kernel/local-registry';
import type { StartOptions } from '../runtime/options';
import type { ServerRef } from '../runtime/server-ref';
import { startServer } from '../runtime/start-server';

interface Start {
  /**
   * Starts a `@DurableServer` class (→ ServerRef, `{ tenant }` required) or a `@ChangesFollower` class
   * (→ FollowerRef, no tenant). Which one, and the state type, are inferred from the class (see
   * start-types.ts): a durable server without `tenant`, a follower given one, or a misspelled option
   * is a compile error (and BAD_ARGUMENT / TENANT_REQUIRED at run time).
   */
  <C extends AnyClass>(cls: C, arg: unknown, ...options: StartOptionsArgs<C>): Promise<RefOf<C>>;
  /** A durable server, with its state type given by hand (prefer the inferred form). */
  <S, C extends AnyClass = AnyClass>(
    cls: C & ServerClassCheck<C>,
    arg: unknown,
    options: StartOptions,
  ): Promise<ServerRef<S>>;
  /** A changes follower, with its state type given by hand (prefer the inferred form). */
  <S, C extends AnyClass = AnyClass>(
    cls: C & FollowerClassCheck<C>,
    arg: unknown,
    options?: FollowerStartOptions,
  ): Promise<FollowerRef<S>>;
}

/** When the class could be inferred (not the default AnyClass of an explicit `<S>`), it must be of its kind. */
type ServerClassCheck<C> = AnyClass extends C ? unknown : IsFollower<C> extends true ? never : unknown;
type FollowerClassCheck<C> = AnyClass extends C ? unknown : IsFollower<C> extends true ? unknown : never;

const start: Start = async (cls: AnyClass, arg: unknown, options?: StartOptions | FollowerStartOptions) => {
  const def = defineClass(cls);
  if (def.meta.kind === 'follower') {
    // Loaded lazily: durable servers do not need the follower's HTTP machinery.
    const { startFollower } = await import('../couch/start-follower');
    return startFollower(def, arg, options as FollowerStartOptions) as never;
  }
  return startServer(def, arg, options as StartOptions) as never;
};

/** Starts servers and followers, and finds and stops them within this process. */
export const Runtime = {
  /**
   * Starts a `@DurableServer` class (→ ServerRef) or a `@ChangesFollower` class (→ FollowerRef). The
   * class's decorators are checked here, before anything runs.
   */
  start,

  /** The ref started with `{ name }` in this process, if it is still running. */
  whereis<R = ServerRef | FollowerRef>(name: string): R | undefined {
    return whereis(name) as R | undefined;
  },

  /** Stops every server and follower started in this process. */
  stopAll(): Promise<void> {
    return stopAll();
  },
};
