/** Which handler a kernel event is about. */
export type HandlerKind =
  'call' | 'cast' | 'info' | 'locked' | 'change' | 'dead-letter' | 'priority-call' | 'priority-cast';

/**
 * What every gen_server — durable server or changes follower — reports on `events$`, under the same
 * names. Each kind adds its own events (the server's commits and locks, the follower's connections and
 * checkpoints) to these.
 */
export type GenServerEvent =
  /** A handler threw or returned something it may not (`error` is HANDLER_FAILED or BAD_RETURN). */
  | {
      readonly type: 'handler-failed';
      readonly kind: HandlerKind;
      readonly error: unknown;
      /** A queued message's attempt (durable servers); 1 for everything handled once. */
      readonly attempt: number;
    }
  /** A message (or change row) that no handler matched and that has no caller to tell. */
  | { readonly type: 'dropped'; readonly kind: 'cast' | 'info' | 'change'; readonly msg: unknown }
  /** An action threw; the actions after it did not run. */
  | { readonly type: 'action-failed'; readonly error: unknown }
  /** `@OnTerminate` threw (the exit reason stays what it was). */
  | { readonly type: 'terminate-failed'; readonly error: unknown }
  /** The last event: this process's part of the gen_server stopped, and why. */
  | { readonly type: 'stopped'; readonly reason: unknown };
