import { createHash } from 'crypto';
import type { TupleItem } from '../backend/types';
import type { PersistentMap } from './persistent-map';

/**
 * What the codec remembers about a stored state: the shape of its keys, enough to diff the next
 * state against it without reading anything back. The runtime keeps one per cached state (it is the
 * "last written state" in a form that knows list positions and chunk counts, which the bare state
 * does not). Snapshots are immutable; a diff shares the unchanged nodes of the old one.
 *
 * Layout of the keys, relative to the state's data prefix (all FoundationDB tuples):
 *   leaf    (…, 't', i)              chunk i of the serialized value (≤ 100 000 bytes each)
 *   object  (…, 'm')                 marker (empty value), so an empty object still exists
 *           (…, 'm', name, …)        property `name`, recursively
 *   id-list (…, 'l')                 marker
 *           (…, 'l', 'i', id)        the item's fractional index (its position)
 *           (…, 'l', 'v', id, …)     the item, recursively
 * Positions live in their own keys, apart from the items, so moving an item rewrites one small key
 * and leaves the item's keys alone.
 */

export const TAG = Object.freeze({
  leaf: 't',
  object: 'm',
  list: 'l',
  listIndex: 'i',
  listItem: 'v',
});

export type Primitive = string | number | bigint | boolean | null | undefined;

// Nodes are classes with the same leading fields so that the diff's hot checks (`immutable`,
// `source`) stay fast property loads.

/** A value stored whole, in chunks. */
export class LeafNode {
  readonly kind = 'leaf';
  constructor(
    /**
     * The value this node was built from, kept only when it is immutable (primitive, or deep-frozen
     * plain data): the next diff skips a part when it meets the very same value again.
     */
    readonly source: unknown,
    readonly immutable: boolean,
    readonly chunks: number,
    /** Encoded length, compared before the digest. */
    readonly size: number,
    /** A primitive is compared by value (`source`); anything else by the digest of its encoding. */
    readonly primitive: boolean,
    /** SHA-256 of the encoding, or the encoding itself when that is shorter. */
    readonly digest: Buffer | undefined,
  ) {}
}

/**
 * In `ObjectNode.vals`, the place of a property whose part is not immutable: equal to no value, so
 * such a property is always looked at again.
 */
export const NOT_IMMUTABLE: unique symbol = Symbol('dgen.codec.notImmutable');

/** A plain object, one key per property. */
export class ObjectNode {
  readonly kind = 'object';
  constructor(
    readonly source: unknown,
    readonly immutable: boolean,
    readonly props: PersistentMap<string, StateNode>,
    /**
     * What the diff saw, for the next diff's fast path (absent in a snapshot read back): the
     * property names in `Object.keys` order, and per name the value it held when that part is
     * immutable (a primitive, or deep-frozen), else NOT_IMMUTABLE. A property whose name is at the
     * same place and whose value is the very same immutable value is unchanged, with no map lookup.
     * Both arrays belong to the node and are never changed.
     */
    readonly keys?: readonly string[],
    readonly vals?: readonly unknown[],
  ) {}
}

export interface ListEntry {
  readonly frac: string;
  readonly node: StateNode;
}

/**
 * An id-list, one key per item plus one position key per item. `items` is persistent: a diff that
 * changes a few items of a long list shares the bulk of the map with the previous snapshot.
 */
export class ListNode {
  readonly kind = 'list';
  constructor(
    /** The array, when immutable (deep-frozen): `source[j]` is then the item at position j. */
    readonly source: unknown,
    readonly immutable: boolean,
    readonly items: PersistentMap<string, ListEntry>,
    /**
     * Ids in list order (ascending fractional index); absent when the list is immutable, as its
     * `source` array then holds the items in order (so a diff need not copy 100 000 ids when one
     * item is appended). Read them through `idAt`.
     */
    private readonly ids: readonly string[] | undefined,
    /**
     * For the next diff's fast path, when the list is not immutable (absent in a snapshot read
     * back): per position, the item when its part is immutable, else NOT_IMMUTABLE. (An immutable
     * list needs none: its `source` is the array.) Belongs to the node and is never changed.
     */
    readonly vals?: readonly unknown[],
  ) {}

  /** How many items. */
  get length(): number {
    return this.ids !== undefined ? this.ids.length : (this.source as readonly unknown[]).length;
  }

  /** The id of the item at position `k`. */
  idAt(k: number): string {
    return this.ids !== undefined ? this.ids[k] : (this.source as readonly { id: string }[])[k].id;
  }

  /** Ids in list order. */
  order(): string[] {
    const out = new Array<string>(this.length);
    for (let k = 0; k < out.length; k++) out[k] = this.idAt(k);
    return out;
  }
}

export type StateNode = LeafNode | ObjectNode | ListNode;
export type NodeKind = StateNode['kind'];

export class StateSnapshot {
  constructor(readonly root: StateNode) {}

  /** How many keys the stored state occupies (without the version key). */
  get keyCount(): number {
    return countKeys(this.root);
  }
}

export function countKeys(node: StateNode): number {
  switch (node.kind) {
    case 'leaf':
      return node.chunks;
    case 'object': {
      let n = 1;
      for (const child of node.props.values()) n += countKeys(child);
      return n;
    }
    case 'list': {
      let n = 1;
      for (const e of node.items.values()) n += 1 + countKeys(e.node);
      return n;
    }
  }
}

/** A key of the stored state, relative to its data prefix, with its value. */
export interface StateEntry {
  readonly path: readonly TupleItem[];
  readonly value: Buffer;
}

/** How a non-primitive leaf is recognised unchanged: its encoding when short, else its SHA-256. */
export function leafDigest(bytes: Buffer): Buffer {
  return bytes.length <= 32 ? Buffer.from(bytes) : createHash('sha256').update(bytes).digest();
}
