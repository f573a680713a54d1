/** Little-endian signed 64-bit integers, FoundationDB's atomic-add encoding. */
export function decodeInt64LE(value: Buffer | undefined): bigint {
  if (!value || value.length === 0) return 0n;
  if (value.length >= 8) return value.readBigInt64LE(0);
  const buf = Buffer.alloc(8);
  value.copy(buf, 0, 0, Math.min(8, value.length));
  return buf.readBigInt64LE(0);
}

export function encodeInt64LE(n: bigint): Buffer {
  const buf = Buffer.allocUnsafe(8); // every byte is written below
  buf.writeBigInt64LE(BigInt.asIntN(64, n));
  return buf;
}

/** `value + delta` with 64-bit wrap-around, as FoundationDB's ADD mutation. */
export const addInt64LE = (value: Buffer | undefined, delta: number | bigint): Buffer =>
  encodeInt64LE(decodeInt64LE(value) + BigInt(delta));
