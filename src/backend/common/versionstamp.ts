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

/** Packs a tuple holding one unbound versionstamp, assigning the next user version when none is given. */
export function packVersionstampedTuple(
  items: KeyTuple,
  nextCode: () => number,
): { data: Buffer; stampPos: number } {
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
        const code = item.code ?? nextCode();
        if (!Number.isInteger(code) || code < 0 || code > 0xffff)
          throw new BadArgumentError(
            'BAD_KEY',
            `a versionstamp's user version is 0..65535, so a transaction can write at most 65536 versionstamped keys (got ${code})`,
          );
        baked = { type: 'unbound versionstamp', code };
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
