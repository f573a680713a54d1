import { BadArgumentError } from '../errors';
import { setClassMeta } from './metadata';

export interface DurableServerOptions {
  /** The stable identity of the server: its default tuid is ['dgen_server', name]. Defaults to the class name. */
  name?: string;
  /**
   * The version of the state's shape, a positive integer (default 1). A process whose class has a
   * higher version than the stored state upgrades it (`@OnUpgrade`) when it starts; one whose class
   * has a lower version never touches it and stops with VERSION_AHEAD.
   */
  version?: number;
}

/** Marks a class as a durable server: state and queue in a backend, started with `Runtime.start`. */
export function DurableServer(options: DurableServerOptions = {}): ClassDecorator {
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0))
    throw new BadArgumentError('BAD_ARGUMENT', `@DurableServer({ name }) takes a non-empty string`);
  const version = checkVersionOption('DurableServer', options.version);
  return (target) =>
    setClassMeta(target, { kind: 'server', decorator: 'DurableServer', name: options.name, version });
}

/** A class decorator's `version` option: a positive integer, or undefined for 1. */
export function checkVersionOption(decorator: string, version: unknown): number | undefined {
  if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `@${decorator}({ version }) takes a positive integer (got ${String(version)})`,
    );
  return version as number | undefined;
}
