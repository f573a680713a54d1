import { decodeInt64LE, encodeInt64LE } from '../backend/common/int64';
import { upgradeMethodOf } from '../decorators/on-upgrade';
import { HandlerError, VersionAheadError } from '../errors';
import type { ClassDefinition } from '../registry/class-definition';

/**
 * State versions (gen_server's `code_change`), shared by durable servers and followers: a stored
 * state carries the version of the class that wrote it (a small integer under a key of the caller's
 * choosing; absent means 1, as every state stored before versions existed). A process reads it with
 * the state, brings the state to its own version here, and writes the version back with the state.
 */

/** The running class's state version: `@DurableServer({ version })`, 1 by default. */
export const classVersion = (def: ClassDefinition): number => def.meta.version ?? 1;

/** A stored version as read (undefined = stored before versions existed = 1). */
export const decodeStateVersion = (raw: Buffer | undefined): number =>
  raw === undefined || raw.length === 0 ? 1 : Number(decodeInt64LE(raw));

export const encodeStateVersion = (version: number): Buffer => encodeInt64LE(BigInt(version));

/** Throws VERSION_AHEAD when `stored` is newer than the running class: such a state is never touched. */
export function assertNotAhead(def: ClassDefinition, stored: number): void {
  const running = classVersion(def);
  if (stored > running)
    throw new VersionAheadError(
      `the state of ${def.name} was stored by version ${stored} of the class, and this process runs version ${running}: ` +
        `it leaves the state to the newer processes (deploy the new version here, or stop this process)`,
      stored,
      running,
    );
}

/**
 * `state`, stored by version `stored`, as the running class knows it: unchanged when stored by this
 * version; passed through `@OnUpgrade(oldState, fromVersion)` (or kept, without one) when stored by an
 * older one (`upgraded: true`: write it back with `classVersion(def)`); VERSION_AHEAD when newer.
 * The upgrade must be synchronous; one that throws (or returns a promise) is UPGRADE_FAILED and the
 * stored state is left as it was.
 */
export function toCurrentVersion(
  def: ClassDefinition,
  instance: object,
  stored: number,
  state: unknown,
): { state: unknown; upgraded: boolean } {
  assertNotAhead(def, stored);
  const running = classVersion(def);
  if (stored === running) return { state, upgraded: false };
  const method = upgradeMethodOf(def.ctor);
  if (method === undefined) return { state, upgraded: true };
  const where = `${def.ctor.name}.${String(method)}`;
  let next: unknown;
  try {
    const fn = (instance as Record<string | symbol, (...a: unknown[]) => unknown>)[method];
    next = fn.call(instance, state, stored);
  } catch (err) {
    throw new HandlerError(
      'UPGRADE_FAILED',
      `${where} threw upgrading the state from version ${stored} to ${running}: ${(err as Error)?.message ?? String(err)}; the stored state is unchanged`,
      { cause: err },
    );
  }
  if (next === undefined || typeof (next as { then?: unknown } | null)?.then === 'function')
    throw new HandlerError(
      'UPGRADE_FAILED',
      `${where} returned ${next === undefined ? 'undefined (did you forget to return the new state?)' : 'a promise'}; ` +
        `an @OnUpgrade method returns the new state synchronously (it runs inside a transaction)`,
    );
  return { state: next, upgraded: true };
}
