export { DurableServer, type DurableServerOptions } from './durable-server';
export { OnUpgrade } from './on-upgrade';
export { Init, OnCall, OnCast, OnInfo, OnLocked, OnTerminate, handlerDecorator } from './handler-decorators';
export {
  getClassMeta,
  getHandlerMeta,
  setClassMeta,
  type ClassMeta,
  type HandlerMeta,
  type HandlerRole,
} from './metadata';
