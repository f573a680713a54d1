import type { HandlerRole } from '../decorators/metadata';
import { NoHandlerError } from '../errors';
import { describeMessage } from '../registry/dispatch-table';

/** NO_HANDLER for a message no handler of `role` takes: durable servers and followers say it alike. */
export function noHandler(className: string, role: HandlerRole, msg: unknown): NoHandlerError {
  return new NoHandlerError(
    `${className} has no @On${role[0].toUpperCase()}${role.slice(1)} handler for message ${describeMessage(msg)}; add one tagged with its type, or an untagged fallback`,
  );
}
