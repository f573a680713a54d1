import { toChunks } from './chunks';
import { inspectValue, type ValuePath } from './serializable';
import { CHUNK_BYTES } from './state-diff-ops';
import type { DiffWalk } from './state-diff-walk';
import { LeafNode, leafDigest, TAG } from './state-snapshot';

/**
 * A part stored as one serialized value in chunks (see state-diff.ts). A primitive is compared by
 * value (an unchanged one never gets here); anything else is inspected, encoded and compared with
 * what is stored by size and digest, and rewritten only when they differ.
 */
export function diffLeaf(w: DiffWalk, old: LeafNode | undefined, value: unknown, path: ValuePath): LeafNode {
  if (typeof value !== 'object' || value === null) {
    // a primitive (an unchanged one was caught by node()); functions, symbols and strings with a lone
    // surrogate are rejected here
    const t = typeof value;
    if (t === 'function' || t === 'symbol' || t === 'string') inspectValue(value, path, w.ins);
    const bytes = w.encode(value, value === 0 && 1 / (value as number) < 0, path);
    return writeLeaf(w, old, bytes, value, true, true, undefined);
  }
  w.ins.owner = path;
  w.ins.normalize = false;
  const immutable = inspectValue(value, path, w.ins);
  const bytes = w.encode(value, w.ins.normalize, path);
  const digest = leafDigest(bytes);
  const source = immutable ? value : undefined;
  if (old !== undefined && !old.primitive && old.size === bytes.length && old.digest?.equals(digest)) {
    return old.source === source && old.immutable === immutable
      ? old
      : new LeafNode(source, immutable, old.chunks, old.size, false, old.digest);
  }
  return writeLeaf(w, old, bytes, source, immutable, false, digest);
}

/** Sets the chunks of `bytes` and clears the chunks past them that `old` had. */
function writeLeaf(
  w: DiffWalk,
  old: LeafNode | undefined,
  bytes: Buffer,
  source: unknown,
  immutable: boolean,
  primitive: boolean,
  digest: Buffer | undefined,
): LeafNode {
  const pieces = toChunks(bytes, CHUNK_BYTES);
  const chunks = pieces.length;
  for (let i = 0; i < chunks; i++) w.ops.push({ type: 'set', path: w.here(TAG.leaf, i), value: pieces[i] });
  for (let i = chunks; i < (old?.chunks ?? 0); i++) w.ops.push({ type: 'clear', path: w.here(TAG.leaf, i) });
  return new LeafNode(source, immutable, chunks, bytes.length, primitive, digest);
}
