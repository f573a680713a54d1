import type { Lifecycle } from '../kernel/lifecycle';
import type { PendingCalls } from '../kernel/pending-calls';
import type { ClassDefinition } from '../registry/class-definition';
import type { FollowerEvent } from './follower-events';
import type { IdleTimeout } from './idle-timeout';

/** Unwinds the follower's loop: it stops with `reason`. */
export class StopSignal {
  constructor(readonly reason: unknown) {}
}

/** What every part of a running follower shares: its class, its in-memory state and its life. */
export interface FollowerCore<S> {
  readonly def: ClassDefinition;
  readonly instance: object;
  /** Frozen, replaced by each handler's return. */
  state: S;
  readonly life: Lifecycle<FollowerEvent>;
  readonly calls: PendingCalls;
  readonly idle: IdleTimeout;
}
