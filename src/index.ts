import 'reflect-metadata';

export * from './errors';
export * from './backend/types';
export { pack, unpack, unboundVersionstamp, prefixRange, strinc } from './backend/keys';
export { openBackend, type OpenBackendOptions } from './backend/open-backend';
export { MemoryBackend } from './backend/memory/memory-backend';
export { SqliteBackend, type SqliteBackendOptions } from './backend/sqlite/sqlite-backend';
export { PostgresBackend } from './backend/postgres/postgres-backend';
export type { PostgresBackendOptions } from './backend/postgres/postgres-options';
export { FdbBackend } from './backend/fdb/fdb-backend';
export { FaultyBackend, type FaultyBackendOptions } from './backend/faulty/faulty-backend';

export {
  DurableServer,
  Init,
  OnCall,
  OnCast,
  OnInfo,
  OnLocked,
  OnTerminate,
  OnUpgrade,
  type DurableServerOptions,
} from './decorators';
export {
  ok,
  reply,
  noreply,
  lock,
  stop,
  type Action,
  type Tuid,
  type OkReturn,
  type ReplyReturn,
  type NoreplyReturn,
  type LockReturn,
  type StopReturn,
  type HandlerReturn,
  type ReturnOptions,
} from './returns';
export { Runtime } from './facade/runtime';
export type { StartOptions, Serializer } from './runtime/options';
export type { ServerRef, CallOptions, CastOptions } from './runtime/server-ref';
export type { HandlerContext, TimerOptions } from './runtime/context/handler-context';
export type { PendingTimer } from './timers/timer-store';
export type { Clock } from './kernel/clock';
export type { ServerEvent, HandledKind } from './runtime/events';
export type { IdentifiedDeadLetter as DeadLetter } from './ops/dead-letters';
export { OnDeadLetter } from './ops/on-dead-letter';
export { type IndexRecord, type IndexedServer, scanIndex, listTenantPaths } from './ops/server-index';

export * from './couch';
