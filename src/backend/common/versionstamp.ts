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

/** Packs a tuple holding one unbound versionstamp, assigning the next user version when none is given. */
export function packVersionstampedTuple(
  items: KeyTuple,
  nextCode: () => number,
): { data: Buffer; stampPos: number } {
  let found = 0;
  const bake = (arr: KeyTuple): KeyTuple =>
    arr.map((item) => {
      if (Array.isArray(item)) return bake(item);
      if (item && typeof item === 'object' && 'type' in item && item.type === 'unbound versionstamp') {
        found++;
        return { type: 'unbound versionstamp', code: item.code ?? nextCode() };
      }
      return item;
    });
  const baked = bake(items);
  if (found !== 1)
    throw new BadArgumentError(
      'BAD_KEY',
      `a versionstamped key needs exactly one unboundVersionstamp() in its tuple (found ${found})`,
    );
  const { data, stampPos } = tuple.packUnboundVersionstamp(baked);
  return { data, stampPos };
}
