import { pack } from '../backend/keys';
import type { TupleItem } from '../backend/types';
import { rootPath } from './serializable';
import { cborSerializer, type Serializer } from './serializer';
import type { StateOp } from './state-diff-ops';
import { DiffWalk, Restart } from './state-diff-walk';
import { StateSnapshot, type StateEntry } from './state-snapshot';

export { CHUNK_BYTES, PATH_BUDGET_BYTES, type StateOp } from './state-diff-ops';

/**
 * The pure half of writing a state: from the snapshot of what is stored and the new state, the key
 * operations that turn one into the other, and the snapshot of the result. Nothing here touches a
 * transaction, so the runtime can diff, tests can count, and a failed commit leaves the old snapshot
 * valid.
 *
 * Kinds: a plain object is stored one key per property; an array whose items are all plain objects
 * with distinct string `id`s is stored one key per item in fractional-index order; anything else is
 * one serialized value in chunks. A part whose kind changes is cleared and written anew.
 *
 * Cost of a diff: an immutable part (a primitive, or found deep-frozen when it was stored, as the
 * runtime makes states) met again as the same value is skipped outright; otherwise containers are
 * walked, primitives compared by value, and other values re-encoded and compared by digest. For an
 * object the diff keeps its property names in order and the values of its immutable parts (see
 * ObjectNode), so a change to one property of a frozen 10 000-property state costs V8's
 * `Object.keys` of the new state, one property load and two array reads per other property, and
 * inspecting and encoding the one changed value (errors still name its full path). An id-list is
 * walked in parallel with the old one from both ends, settling a position that holds the very same
 * frozen item by one comparison; only the items between the unchanged ends are looked up by id
 * (see state-diff-list.ts), and the snapshot's item map is persistent, so changing, appending or
 * removing one item of a frozen 100 000-item list costs a pass of comparisons, not a rebuilt map.
 * Only parts that were verified frozen are skipped by identity, so a caller that changes a mutable
 * part in place is still noticed; a state that is not frozen is diffed correctly, only slower.
 *
 * Shared and cyclic references: when a mutable object is reachable from two parts that would be
 * stored under different keys, the smallest object or list holding both is stored as one value
 * instead (CBOR keeps the sharing there) — exact, at the price of rewriting that value whole.
 * Deep-frozen objects are values: sharing them is not tracked, each place stores its own copy.
 *
 * The parts: state-diff-walk.ts (one walk: the key path, the operations so far, and which kind a
 * value is stored as), state-diff-object.ts, state-diff-list.ts with state-diff-list-middle.ts (the
 * position keys), state-diff-leaf.ts (serialize, digest, chunks), state-diff-ops.ts (the operations
 * and their limits).
 */

export interface StateDiff {
  /** What is stored once `ops` are applied. */
  readonly snapshot: StateSnapshot;
  readonly ops: readonly StateOp[];
}

/**
 * The key operations that change the stored `old` state into `next`, and the resulting snapshot.
 * With no `old` (nothing known about what is stored) the operations clear everything first and
 * write `next` in full. Throws NOT_SERIALIZABLE (naming the path) for values that cannot be stored.
 */
export function diffState(
  old: StateSnapshot | undefined,
  next: unknown,
  serializer: Serializer = cborSerializer,
): StateDiff {
  const forced = new Set<string>();
  for (;;) {
    const walk = new DiffWalk(serializer, forced);
    try {
      if (old === undefined) walk.ops.push({ type: 'clearRange', path: [], keys: undefined });
      const root = walk.node(old?.root, next, rootPath('state'));
      return {
        snapshot: old !== undefined && root === old.root ? old : new StateSnapshot(root),
        ops: walk.ops,
      };
    } catch (err) {
      if (!(err instanceof Restart)) throw err;
      forced.add(err.key); // store that part whole and walk again
    }
  }
}

/** The keys a state is stored as, from scratch (sorted as the backend would hold them), and its snapshot. */
export function encodeState(
  state: unknown,
  serializer: Serializer = cborSerializer,
): { entries: StateEntry[]; snapshot: StateSnapshot } {
  const { ops, snapshot } = diffState(undefined, state, serializer);
  const entries: StateEntry[] = [];
  for (const op of ops) if (op.type === 'set') entries.push({ path: op.path, value: op.value });
  return { entries: sortEntries(entries), snapshot };
}

/** Sorts entries in key order (the order a range read returns them in). */
export function sortEntries(entries: StateEntry[]): StateEntry[] {
  const keyed = entries.map((e) => ({ e, k: pack(e.path as TupleItem[]) }));
  keyed.sort((x, y) => Buffer.compare(x.k, y.k));
  return keyed.map((x) => x.e);
}
