/**
 * A short hash of a full key for NOTIFY payloads (FNV-1a, 32 bits, base 36): listeners re-read only
 * the watched keys whose hash a commit lists. A collision costs one needless read, never a missed watch.
 */
export function keyHash(key: Buffer): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}
