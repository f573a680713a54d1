import * as tuple from 'fdb-tuple';
import type { KeyTuple } from './types';

/** FoundationDB tuple encoding: keys sort as their tuples do. */
export const pack = (items: KeyTuple): Buffer => tuple.pack(items);
export const unpack = (key: Buffer): KeyTuple => tuple.unpack(key);
export const unboundVersionstamp = tuple.unboundVersionstamp;

/** The half-open byte range holding every key that starts with the tuple `prefix` (and not the prefix itself). */
export function prefixRange(prefix: KeyTuple): { start: Buffer; end: Buffer } {
  const { begin, end } = tuple.range(prefix);
  return { start: begin, end };
}

/** The first key after every key that starts with `bytes` (FoundationDB's strinc). */
export function strinc(bytes: Buffer): Buffer {
  let i = bytes.length - 1;
  while (i >= 0 && bytes[i] === 0xff) i--;
  if (i < 0) throw new RangeError('strinc: key is all 0xff bytes and has no successor');
  const out = Buffer.from(bytes.subarray(0, i + 1));
  out[i]++;
  return out;
}

/**
 * Copies of `parts` sharing one allocation (from Node's buffer pool, for small ones): a packed key
 * owns an ArrayBuffer, which costs more than its bytes, and a process may hold the keys of 10,000
 * idle servers.
 */
export function compactKeys(parts: Buffer[]): Buffer[] {
  const all = Buffer.concat(parts);
  let at = 0;
  return parts.map((p) => all.subarray(at, (at += p.length)));
}
