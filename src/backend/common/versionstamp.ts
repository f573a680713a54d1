import * as tuple from 'fdb-tuple';
import { BadArgumentError } from '../../errors';
import type { KeyTuple, Versionstamp } from '../types';

/** A 10-byte versionstamp for a commit version (8 bytes big-endian) and batch order (2 bytes). */
export function makeVersionstamp(commitVersion: bigint, batch = 0): Versionstamp {
  const buf = Buffer.allocUnsafe(10); // every byte is written below
  buf.writeBigUInt64BE(commitVersion, 0);
  buf.writeUInt16BE(batch, 8);
  return buf;
}

const isUnbound = (item: unknown): item is { type: 'unbound versionstamp'; code?: number } =>
  !!item && typeof item === 'object' && (item as { type?: unknown }).type === 'unbound versionstamp';

const checkedCode = (code: number): number => {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff)
    throw new BadArgumentError(
      'BAD_KEY',
      `a versionstamp's user version is 0..65535, so a transaction can write at most 65536 versionstamped keys (got ${code})`,
    );
  return code;
};

/**
 * The packed bytes before the user version, of frozen tuples whose last item is their one unbound
 * versionstamp, given no user version (a server's queue item key, `ServerKeys.queueItemStamped`):
 * packed once, not for every message pushed.
 */
const stampedPrefixes = new WeakMap<KeyTuple, Buffer | null>();

/** The prefix of a frozen tuple (see stampedPrefixes), or null if it is not of that shape. */
function stampedPrefixOf(items: KeyTuple): Buffer | null {
  let prefix = stampedPrefixes.get(items);
  if (prefix !== undefined) return prefix;
  const last = items[items.length - 1];
  prefix = null;
  if (isUnbound(last) && last.code === undefined) {
    const { data, stampPos } = packSlow(items, () => 0);
    if (data.length === stampPos + 12) prefix = Buffer.from(data.subarray(0, stampPos + 10));
  }
  stampedPrefixes.set(items, prefix);
  return prefix;
}

/** Packs a tuple holding one unbound versionstamp, assigning the next user version when none is given. */
export function packVersionstampedTuple(
  items: KeyTuple,
  nextCode: () => number,
): { data: Buffer; stampPos: number } {
  const prefix = Object.isFrozen(items) ? stampedPrefixOf(items) : null;
  if (prefix === null) return packSlow(items, nextCode);
  const data = Buffer.allocUnsafe(prefix.length + 2);
  prefix.copy(data);
  data.writeUInt16BE(checkedCode(nextCode()), prefix.length);
  return { data, stampPos: prefix.length - 10 };
}

function packSlow(items: KeyTuple, nextCode: () => number): { data: Buffer; stampPos: number } {
  let found = 0;
  const bake = (arr: KeyTuple): KeyTuple => {
    // Copy only what has to change (this runs for every queued message).
    let out: KeyTuple | undefined;
    for (let i = 0; i < arr.length; i++) {
      const item = arr[i];
      let baked: KeyTuple[number] = item;
      if (Array.isArray(item)) baked = bake(item);
      else if (isUnbound(item)) {
        found++;
        baked = { type: 'unbound versionstamp', code: checkedCode(item.code ?? nextCode()) };
      }
      if (baked !== item) (out ??= arr.slice())[i] = baked;
    }
    return out ?? arr;
  };
  const baked = bake(items);
  if (found !== 1)
    throw new BadArgumentError(
      'BAD_KEY',
      `a versionstamped key needs exactly one unboundVersionstamp() in its tuple (found ${found})`,
    );
  const { data, stampPos } = tuple.packUnboundVersionstamp(baked);
  return { data, stampPos };
}
