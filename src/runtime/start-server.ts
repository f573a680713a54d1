import { DefinitionError } from '../errors';
import type { ClassDefinition } from '../registry/class-definition';
import type { OkReturn, Tuid } from '../returns';
import { invokeHandler } from '../kernel/invoke';
import { track } from '../kernel/local-registry';
import { resolveOptions, type StartOptions } from './options';
import { makeServerRef, type ServerRef } from './server-ref';
import { ServerProcess } from './server-process';
import { StateStore } from '../codec/state-codec';
import { stepAside, VersionedState } from './versioned-state';
import { isWellFormed } from '../text';

function checkTuid(tuid: unknown, where: string): Tuid {
  if (
    !Array.isArray(tuid) ||
    tuid.length === 0 ||
    !tuid.every(
      (p) =>
        (typeof p === 'string' && p.length > 0 && isWellFormed(p)) ||
        (typeof p === 'number' && Number.isFinite(p)),
    )
  )
    throw new DefinitionError(
      'BAD_RETURN',
      `${where} returned a tuid that is not a non-empty array of strings (without lone surrogates) and numbers, e.g. ok(state, ['accounts', 42])`,
    );
  return Object.freeze([...tuid]);
}

/** Starts a durable server: runs `@Init`, stores the initial state if none is stored, starts consuming. */
export async function startServer<S>(
  def: ClassDefinition,
  arg: unknown,
  options: StartOptions,
): Promise<ServerRef<S>> {
  const opts = resolveOptions(options);
  const instance = new def.ctor();
  let state: unknown = arg;
  let tuid: Tuid = ['dgen_server', def.name];
  if (def.init) {
    const init = await invokeHandler<OkReturn<unknown>>(def, instance, 'init', def.init, [arg]);
    state = init.state;
    if (init.tuid !== undefined) tuid = checkTuid(init.tuid, `${def.ctor.name}.${String(def.init)}`);
  }
  const process: ServerProcess = new ServerProcess(
    def,
    instance,
    tuid,
    (keys) =>
      new VersionedState(def, instance, new StateStore(keys.state, opts.serializer), (e) =>
        stepAside(process, e),
      ),
    opts,
  );
  const ref = makeServerRef<S>(process, opts.callTimeout);
  track(ref, opts.name);
  try {
    await process.init(state);
  } catch (err) {
    await process.stop(err);
    throw err;
  }
  return ref;
}
