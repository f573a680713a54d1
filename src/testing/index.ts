/**
 * `dgen-ts/testing`: helpers for users' tests. A VirtualClock moves time by hand, so durable timers
 * and idle timeouts fire when a test says, on the memory and SQLite backends alike.
 */
export { VirtualClock } from './virtual-clock';
export type { Clock } from '../kernel/clock';
