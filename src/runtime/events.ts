import type { GenServerEvent } from '../kernel/events';

/** What a server process does, as emitted on `ref.events$`. */
export type HandledKind = 'call' | 'cast' | 'info' | 'priority-call' | 'priority-cast' | 'locked';

/**
 * What a durable server reports on `ref.events$`: the events every gen_server reports
 * (`handler-failed`, `dropped`, `action-failed`, `terminate-failed`, `stopped`; see GenServerEvent)
 * and its own, about the queue, commits and locks.
 */
export type ServerEvent =
  | GenServerEvent
  | { readonly type: 'handled'; readonly kind: HandledKind; readonly ms: number }
  | { readonly type: 'committed'; readonly version: string }
  | { readonly type: 'lock-acquired' }
  | { readonly type: 'lock-released' }
  | { readonly type: 'lock-expired'; readonly owner: string }
  | { readonly type: 'dead-lettered'; readonly msg: unknown }
  | { readonly type: 'consumer-error'; readonly error: unknown }
  /** A due timer could not be moved into the queue (it is tried again shortly). */
  | { readonly type: 'timer-error'; readonly error: unknown }
  /** The stored state is of a newer class version than this process's: it stops (VERSION_AHEAD). */
  | { readonly type: 'version-ahead'; readonly stored: number; readonly running: number }
  /** `@OnUpgrade` threw upgrading the stored state: this process stops (UPGRADE_FAILED), the state is unchanged. */
  | { readonly type: 'upgrade-failed'; readonly error: unknown };
