import 'reflect-metadata';

export * from './errors';
export * from './backend/types';
export { pack, unpack, unboundVersionstamp, prefixRange, strinc } from './backend/keys';
export { openBackend } from './backend/open-backend';
export { MemoryBackend } from './backend/memory/memory-backend';

export { DurableServer, Init, OnCall, OnCast, OnInfo, OnLocked, type DurableServerOptions } from './decorators';
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
} from './returns';
export { Runtime } from './runtime/runtime';
export type { StartOptions, Serializer } from './runtime/options';
export type { ServerRef, CallOptions } from './runtime/server-ref';
export type { ServerEvent, HandledKind } from './runtime/events';
export type { DeadLetter } from './runtime/wire';
