import type { Tenant } from '../../backend/types';
import { BadArgumentError } from '../../errors';
import type { Tuid } from '../../returns';
import { describeValue, isWellFormed } from '../../text';
import { ServerKeys } from '../server-keys';

/** Where each ServerRef of this process lives, so a ref can be named as the target of an outbox cast. */
const homes = new WeakMap<object, { tenant: Tenant; keys: ServerKeys }>();

export function registerRefHome(ref: object, tenant: Tenant, keys: ServerKeys): void {
  homes.set(ref, { tenant, keys });
}

/** Keys of tuids cast to lately: building them packs seven keys, which a busy relay would do per message. */
const recent = new Map<string, ServerKeys>();
const RECENT = 1000;

function keysOf(tuid: Tuid): ServerKeys {
  const id = JSON.stringify(tuid);
  let keys = recent.get(id);
  if (!keys) {
    if (recent.size >= RECENT) recent.clear();
    recent.set(id, (keys = new ServerKeys(tuid)));
  }
  return keys;
}

const sameTenant = (a: Tenant, b: Tenant): boolean =>
  a === b ||
  (a.backend === b.backend && a.path.length === b.path.length && a.path.every((p, i) => p === b.path[i]));

const isTuid = (t: unknown): t is Tuid =>
  Array.isArray(t) &&
  t.length > 0 &&
  t.every(
    (p) =>
      (typeof p === 'string' && p.length > 0 && isWellFormed(p)) ||
      (typeof p === 'number' && Number.isFinite(p)),
  );

/**
 * The queue keys of `target` (a ServerRef, or a tuid) for a cast written in a transaction on
 * `tenant`. A transaction writes within one tenant, so a ref of another tenant (or backend) is
 * refused with BAD_ARGUMENT rather than written somewhere else.
 */
export function targetKeys(target: unknown, tenant: Tenant, where: string): ServerKeys {
  if (isTuid(target)) return keysOf(target);
  const home = typeof target === 'object' && target !== null ? homes.get(target) : undefined;
  if (!home)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `${where}: the target must be a ServerRef or a tuid (a non-empty array of strings and numbers), got ${describeValue(target)}`,
    );
  if (!sameTenant(home.tenant, tenant))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `${where}: the target server lives in tenant ${JSON.stringify(home.tenant.path)}, not in this transaction's tenant ${JSON.stringify(tenant.path)}; a transaction writes within one tenant`,
    );
  return home.keys;
}
