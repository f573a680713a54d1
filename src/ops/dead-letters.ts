import { pack } from '../backend/keys';
import type { ReadTransaction, Tenant, Transaction } from '../backend/types';
import { BadArgumentError } from '../errors';
import type { Tuid } from '../returns';
import { DurableQueue } from '../runtime/durable-queue';
import { ServerKeys } from '../runtime/server-keys';
import { decodeWire, type DeadLetter } from '../runtime/wire';

/**
 * Dead letters as an operator sees them: listed with an id, put back at the end of the queue, or
 * deleted. An id is the hex of the letter key's suffix after `(...tuid, 'd')`: the tuple-encoded
 * versionstamp of the commit that dead-lettered the message, so ids sort in dead-lettering order.
 */
export interface IdentifiedDeadLetter extends DeadLetter {
  id: string;
}

const ID = /^[0-9a-f]{2,64}$/;

const letterPrefix = (tuid: Tuid): Buffer => pack([...tuid, 'd']);

function checkIds(ids: unknown, where: string): readonly string[] | undefined {
  if (ids === undefined) return undefined;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && ID.test(id) && id.length % 2 === 0))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `${where} takes an array of dead-letter ids (the lowercase hex \`id\` of deadLetters()), or nothing for all`,
    );
  return ids as string[];
}

export async function readDeadLetters(
  tx: ReadTransaction,
  keys: ServerKeys,
): Promise<IdentifiedDeadLetter[]> {
  const prefix = letterPrefix(keys.tuid as Tuid);
  const rows = await tx.getRange(keys.deadLetters.start, keys.deadLetters.end);
  return rows.map((r) => ({
    id: r.key.subarray(prefix.length).toString('hex'),
    ...decodeWire<DeadLetter>(r.value),
  }));
}

/** The letter keys `ids` name that exist (all letters when `ids` is undefined), with their letters. */
async function selected(tx: Transaction, keys: ServerKeys, ids: readonly string[] | undefined) {
  if (ids === undefined) return tx.getRange(keys.deadLetters.start, keys.deadLetters.end);
  const prefix = letterPrefix(keys.tuid as Tuid);
  const out = [];
  for (const id of new Set(ids)) {
    const key = Buffer.concat([prefix, Buffer.from(id, 'hex')]);
    const value = await tx.get(key);
    if (value) out.push({ key, value });
  }
  return out;
}

/**
 * Puts dead letters back at the end of the queue, in one transaction, in dead-lettering order; returns
 * how many. A dead-lettered call comes back as a cast: its caller stopped waiting long ago.
 */
export async function requeueDeadLetters(
  tenant: Tenant,
  tuid: Tuid,
  ids?: readonly string[],
): Promise<number> {
  const checked = checkIds(ids, 'requeueDeadLetters');
  const keys = new ServerKeys(tuid);
  return tenant.transact(async (tx) => {
    const rows = await selected(tx, keys, checked);
    rows.sort((a, b) => Buffer.compare(a.key, b.key));
    for (const r of rows) tx.clear(r.key);
    if (rows.length > 0)
      DurableQueue.push(
        tx,
        keys,
        rows.map((r) => ({ kind: 'cast' as const, msg: decodeWire<DeadLetter>(r.value).msg })),
      );
    return rows.length;
  });
}

/** Deletes dead letters (all of them when `ids` is undefined); returns how many. */
export async function purgeDeadLetters(tenant: Tenant, tuid: Tuid, ids?: readonly string[]): Promise<number> {
  const checked = checkIds(ids, 'purgeDeadLetters');
  const keys = new ServerKeys(tuid);
  return tenant.transact(async (tx) => {
    const rows = await selected(tx, keys, checked);
    for (const r of rows) tx.clear(r.key);
    return rows.length;
  });
}
