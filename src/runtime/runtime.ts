import { defineClass } from '../registry/class-definition';
import { stopAll, whereis, type Stoppable } from './local-registry';
import type { StartOptions } from './options';
import type { ServerRef } from './server-ref';
import { startServer } from './start-server';

/** Starts servers and followers, and finds and stops them within this process. */
export const Runtime = {
  /**
   * Starts a `@DurableServer` class (options with `tenant` → ServerRef) or a `@ChangesFollower` class
   * (→ FollowerRef). The class's decorators are checked here, before anything runs.
   */
  async start<S = unknown>(cls: abstract new (...args: never[]) => object, arg: unknown, options: StartOptions): Promise<ServerRef<S>> {
    const def = defineClass(cls);
    if (def.meta.kind === 'follower') {
      // Loaded lazily: the follower's HTTP machinery is not needed by durable servers.
      const { startFollower } = await import('../couch/start-follower');
      return startFollower(def, arg, options as never) as never;
    }
    return startServer<S>(def, arg, options);
  },

  /** The ref started with `{ name }` in this process, if it is still running. */
  whereis<R = ServerRef>(name: string): R | undefined {
    return whereis(name) as R | undefined;
  },

  /** Stops every server and follower started in this process. */
  stopAll(): Promise<void> {
    return stopAll();
  },
};
export type { Stoppable };
