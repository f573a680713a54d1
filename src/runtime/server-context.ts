import type { Tenant } from '../backend/types';
import type { ClassDefinition } from '../registry/class-definition';
import { returnKind, type Tuid } from '../returns';
import type { ServerEvent } from './events';
import type { ResolvedOptions } from './options';
import type { ServerKeys } from './server-keys';
import type { StateStorage } from './state-storage';
import type { ServerTimers } from '../timers/server-timers';

/** What the parts of one server process (handling, the consumer loop) share of it. */
export interface ServerContext {
  readonly def: ClassDefinition;
  readonly instance: object;
  readonly tuid: Tuid;
  readonly keys: ServerKeys;
  readonly tenant: Tenant;
  readonly opts: ResolvedOptions;
  readonly state: StateStorage;
  /** Names this process in the lock records it writes. */
  readonly owner: string;
  readonly isStopped: boolean;
  /** Its durable timers' side in this process (the scheduler, the idle timeout). */
  readonly timers: ServerTimers;
  emit(e: ServerEvent): void;
  stop(reason: unknown): Promise<void>;
  /** Registers work that stop() waits for. */
  track<T>(p: Promise<T>): Promise<T>;
}

export const returnKindOf = (r: unknown) =>
  returnKind(r) as 'reply' | 'noreply' | 'lock' | 'stop' | undefined;

export const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
