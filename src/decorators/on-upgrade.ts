import 'reflect-metadata';
import { DefinitionError } from '../errors';

const KEY = Symbol.for('dgen-ts:on-upgrade');

/**
 * Marks the method that upgrades a state stored by an older version of the class (gen_server's
 * `code_change`): `(oldState, fromVersion) => newState`, pure and synchronous. It runs inside the
 * transaction that writes the upgraded state back, so it may run more than once (a retried
 * transaction) and must have no side effects. Without one, a version bump keeps the state as it is.
 */
export function OnUpgrade(): MethodDecorator {
  return (target: object, method: string | symbol, descriptor?: PropertyDescriptor) => {
    if (typeof target === 'function' || typeof descriptor?.value !== 'function')
      throw new DefinitionError(
        'BAD_DEFINITION',
        `@OnUpgrade is on ${String(method)}, which is not an instance method`,
      );
    const ctor = target.constructor;
    const existing = Reflect.getOwnMetadata(KEY, ctor) as string | symbol | undefined;
    if (existing !== undefined && existing !== method)
      throw new DefinitionError(
        'BAD_DEFINITION',
        `class ${ctor.name} has two @OnUpgrade methods (${String(existing)} and ${String(method)})`,
      );
    Reflect.defineMetadata(KEY, method, ctor);
  };
}

/** The class's `@OnUpgrade` method (its own or inherited), if any. */
export const upgradeMethodOf = (ctor: object): string | symbol | undefined =>
  Reflect.getMetadata(KEY, ctor) as string | symbol | undefined;
