/** What a server process does, as emitted on `ref.events$`. */
export type HandledKind = 'call' | 'cast' | 'info' | 'priority-call' | 'priority-cast' | 'locked';

export type ServerEvent =
  | { type: 'handled'; kind: HandledKind; ms: number }
  | { type: 'committed'; version: string }
  | { type: 'lock-acquired' }
  | { type: 'lock-released' }
  | { type: 'lock-expired'; owner: string }
  | { type: 'action-failed'; error: unknown }
  | { type: 'handler-failed'; error: unknown; attempt: number }
  | { type: 'dead-lettered'; msg: unknown }
  | { type: 'info-dropped'; msg: unknown }
  | { type: 'consumer-error'; error: unknown }
  /** `@OnTerminate` threw (the exit reason stays what it was). */
  | { type: 'terminate-failed'; error: unknown }
  /** The stored state is of a newer class version than this process's: it stops (VERSION_AHEAD). */
  | { type: 'version-ahead'; stored: number; running: number }
  /** `@OnUpgrade` threw upgrading the stored state: this process stops (UPGRADE_FAILED), the state is unchanged. */
  | { type: 'upgrade-failed'; error: unknown }
  | { type: 'stopped'; reason: unknown };
