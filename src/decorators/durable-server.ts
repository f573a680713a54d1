import { BadArgumentError } from '../errors';
import { setClassMeta } from './metadata';

export interface DurableServerOptions {
  /** The stable identity of the server: its default tuid is ['dgen_server', name]. Defaults to the class name. */
  name?: string;
}

/** Marks a class as a durable server: state and queue in a backend, started with `Runtime.start`. */
export function DurableServer(options: DurableServerOptions = {}): ClassDecorator {
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0))
    throw new BadArgumentError('BAD_ARGUMENT', `@DurableServer({ name }) takes a non-empty string`);
  return (target) => setClassMeta(target, { kind: 'server', decorator: 'DurableServer', name: options.name });
}
