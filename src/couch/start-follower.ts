import { BadArgumentError, DefinitionError, DgenError, HandlerError } from '../errors';
import { describeMessage } from '../registry/dispatch-table';
import type { ClassDefinition } from '../registry/class-definition';
import { returnKind, type StopReturn } from '../returns';
import { isClock } from '../kernel/clock';
import { classVersion, toCurrentVersion } from '../kernel/upgrade';
import { callHandler, thrownBy } from '../kernel/invoke';
import { track } from '../kernel/local-registry';
import { CheckpointStore, type Checkpoint } from './checkpoint-store';
import { FollowerProcess } from './follower-process';
import type { FollowerRef, FollowerStartOptions } from './follower-ref';
import type { FollowReturn } from './returns';

/** What makes a class a startable follower, checked before `@Init` runs. */
function checkDefinition(d: ClassDefinition): ClassDefinition {
  if (d.meta.kind !== 'follower')
    throw new DefinitionError(
      'BAD_DEFINITION',
      `class ${d.name} is not a @ChangesFollower (it is a @${d.meta.decorator}); start it with Runtime.start`,
    );
  if (d.init === undefined)
    throw new DefinitionError(
      'BAD_DEFINITION',
      `@ChangesFollower class ${d.name} needs an @Init method that returns follow(db, state, options)`,
    );
  if (d.tables.change.isEmpty)
    throw new DefinitionError(
      'BAD_DEFINITION',
      `@ChangesFollower class ${d.name} needs at least one @OnChange handler`,
    );
  return d;
}

function checkOptions(opts: unknown): FollowerStartOptions {
  if (opts === undefined) return {};
  if (typeof opts !== 'object' || opts === null)
    throw new BadArgumentError('BAD_ARGUMENT', 'start options must be an object such as { name }');
  const unknown = Object.keys(opts).filter((k) => k !== 'name' && k !== 'callTimeout' && k !== 'clock');
  if (unknown.length > 0)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} for a changes follower (it takes { name, callTimeout, clock }${unknown.includes('tenant') ? '; its state lives in memory — checkpoint it with follow(db, state, { checkpoint: { tenant } })' : ''})`,
    );
  const o = opts as FollowerStartOptions;
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0))
    throw new BadArgumentError('BAD_ARGUMENT', 'options.name must be a non-empty string');
  if (
    o.callTimeout !== undefined &&
    (typeof o.callTimeout !== 'number' || Number.isNaN(o.callTimeout) || o.callTimeout <= 0)
  )
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `options.callTimeout must be a positive number of ms (got ${String(o.callTimeout)})`,
    );
  if (o.clock !== undefined && !isClock(o.clock))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      'options.clock must be a Clock (e.g. a VirtualClock from dgen-ts/testing)',
    );
  return o;
}

/** Runs `@Init(arg)` on `instance`; returns its `follow(...)` or throws a coded DgenError. */
async function runInit<S>(
  definition: ClassDefinition,
  instance: object,
  arg: unknown,
): Promise<FollowReturn<S>> {
  let result: unknown;
  try {
    result = await callHandler(definition, instance, 'init', definition.init as string | symbol, [arg]);
  } catch (err) {
    const thrown = thrownBy(err);
    throw thrown instanceof DgenError ? thrown : err; // e.g. follow(...)'s own BAD_ARGUMENT, as thrown
  }
  if (returnKind(result) === 'stop') {
    const reason = (result as StopReturn<unknown>).reason;
    throw new HandlerError(
      'STOPPED',
      `@Init of ${definition.name} returned stop(${describeMessage(reason)}); the follower did not start`,
      { cause: reason },
    );
  }
  return result as FollowReturn<S>;
}

/**
 * Starts a `@ChangesFollower` class (what `Runtime.start` does for one): runs `@Init(arg)`, loads the
 * checkpoint when `follow(..., { checkpoint })` names one (its seq and state win over `since` and the
 * initial state), registers the ref (`track`) and starts following in the background. Resolves once
 * the follower runs; connection trouble is reported on `events$` and handled as the class says, never
 * by rejecting this promise.
 *
 * Rejects with BAD_DEFINITION (not a follower class, no `@Init`, no `@OnChange`), BAD_ARGUMENT (bad
 * options, or `follow(...)` given bad arguments), HANDLER_FAILED (`@Init` threw), BAD_RETURN (`@Init`
 * returned something other than `follow(...)` or `stop(...)`), STOPPED (`@Init` returned
 * `stop(reason, s)`; the reason is the error's `cause`), ALREADY_REGISTERED (the name is taken).
 */
export async function startFollower<S = unknown>(
  def: ClassDefinition,
  arg: unknown,
  opts: FollowerStartOptions = {},
): Promise<FollowerRef<S>> {
  const definition = checkDefinition(def);
  const options = checkOptions(opts);
  const instance = new definition.ctor();
  const spec = await runInit<S>(definition, instance, arg);

  let state = spec.state;
  let since = spec.options.since;
  let store: CheckpointStore | undefined;
  let saved: Checkpoint<S> | undefined;
  if (spec.options.checkpoint) {
    store = new CheckpointStore(
      spec.options.checkpoint.tenant,
      spec.options.checkpoint.key ?? definition.name,
      classVersion(definition),
    );
    saved = await store.load<S>();
    if (saved) {
      // as a durable server's state: upgraded when older (written back with the next checkpoint),
      // VERSION_AHEAD when newer
      state = toCurrentVersion(definition, instance, saved.version, saved.state).state as S;
      since = saved.seq;
    }
  }

  const follower = new FollowerProcess<S>({
    def: definition,
    instance,
    state,
    db: spec.db,
    options: spec.options,
    since,
    // starting over (the database was replaced) runs @Init again, for a state no handler has touched
    restart: async () => {
      const again = await runInit<S>(definition, instance, arg);
      return { state: again.state, since: again.options.since };
    },
    resumed: saved,
    store,
    callTimeout: options.callTimeout,
    clock: options.clock,
  });
  track(follower.ref, options.name);
  follower.start();
  return follower.ref;
}
