import type { FollowerRef, FollowerStartOptions } from '../couch/follower-ref';
import { defineClass } from '../registry/class-definition';
import { stopAll, whereis } from './local-registry';
import type { StartOptions } from './options';
import type { ServerRef } from './server-ref';
import { startServer } from './start-server';

type AnyClass = abstract new (...args: never[]) => object;

interface Start {
  /** A `@DurableServer` class, with `{ tenant }` → its ServerRef. */
  <S = unknown>(cls: AnyClass, arg: unknown, options: StartOptions): Promise<ServerRef<S>>;
  /** A `@ChangesFollower` class (no tenant: a follower's own state lives in memory) → its FollowerRef. */
  <S = unknown>(cls: AnyClass, arg: unknown, options?: FollowerStartOptions): Promise<FollowerRef<S>>;
}

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
