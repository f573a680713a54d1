import { LIMITS } from '../backend/types';

/** Splits bytes into pieces that each fit one value. */
export function toChunks(bytes: Buffer, size = LIMITS.valueBytes): Buffer[] {
  if (bytes.length === 0) return [bytes];
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}
