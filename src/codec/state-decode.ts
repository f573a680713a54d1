import type { TupleItem } from '../backend/types';
import { DgenError } from '../errors';
import { isFracKey } from './frac-index';
import { cborSerializer, type Serializer } from './serializer';
import { PersistentMap } from './persistent-map';
import {
  LeafNode,
  leafDigest,
  ListNode,
  ObjectNode,
  StateSnapshot,
  TAG,
  type ListEntry,
  type Primitive,
  type StateEntry,
  type StateNode,
} from './state-snapshot';

/**
 * The pure half of reading a state: from its keys in key order (as a range read returns them) back
 * to the value, together with the snapshot the next diff starts from. Keys sort as their tuples, so
 * every part's keys are contiguous and each part is decoded from its own slice.
 *
 * Objects come back with their properties in key order (and JavaScript puts integer-like names
 * first), which may differ from the order they were written in; values are otherwise exact.
 */

function malformed(path: readonly TupleItem[], why: string): never {
  throw new DgenError(
    'BAD_KEY',
    `stored state is malformed at ${JSON.stringify(path, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}: ${why}; was it written by another version or changed by hand?`,
  );
}

const isPrimitive = (v: unknown): v is Primitive => typeof v !== 'object' || v === null;

class Reader {
  constructor(
    private readonly entries: readonly StateEntry[],
    private readonly serializer: Serializer,
  ) {}

  private at(i: number, depth: number): TupleItem | undefined {
    return this.entries[i].path[depth];
  }

  /** Decodes entries [lo, hi), which all start with the same path of `depth` elements. */
  node(lo: number, hi: number, depth: number): { value: unknown; node: StateNode } {
    const tag = this.at(lo, depth);
    switch (tag) {
      case TAG.leaf:
        return this.leaf(lo, hi, depth);
      case TAG.object:
        return this.object(lo, hi, depth);
      case TAG.list:
        return this.list(lo, hi, depth);
      default:
        return malformed(this.entries[lo].path, `unknown tag ${String(tag)}`);
    }
  }

  private leaf(lo: number, hi: number, depth: number): { value: unknown; node: LeafNode } {
    const parts: Buffer[] = [];
    for (let i = lo; i < hi; i++) {
      const { path, value } = this.entries[i];
      if (path[depth] !== TAG.leaf || path[depth + 1] !== i - lo || path.length !== depth + 2) {
        malformed(path, `expected chunk ${i - lo} of a value`);
      }
      parts.push(value);
    }
    const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const value = this.serializer.decode(bytes);
    const primitive = isPrimitive(value);
    const node = primitive
      ? new LeafNode(value, true, hi - lo, bytes.length, true, undefined)
      : new LeafNode(undefined, false, hi - lo, bytes.length, false, leafDigest(bytes));
    return { value, node };
  }

  private object(lo: number, hi: number, depth: number): { value: unknown; node: StateNode } {
    if (this.entries[lo].path.length !== depth + 1)
      malformed(this.entries[lo].path, 'object without its marker');
    const obj: Record<string, unknown> = {};
    const props = new Map<string, StateNode>();
    for (let i = lo + 1; i < hi;) {
      const name = this.at(i, depth + 1);
      if (this.at(i, depth) !== TAG.object || typeof name !== 'string') {
        malformed(this.entries[i].path, 'expected a property');
      }
      let j = i + 1;
      while (j < hi && this.at(j, depth + 1) === name) j++;
      const child = this.node(i, j, depth + 2);
      // "__proto__" must become a property, not a prototype (the writer rejects it; be safe anyway)
      if (name === '__proto__') {
        Object.defineProperty(obj, name, {
          value: child.value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else obj[name] = child.value;
      props.set(name, child.node);
      i = j;
    }
    return { value: obj, node: new ObjectNode(undefined, false, PersistentMap.of(props)) };
  }

  private list(lo: number, hi: number, depth: number): { value: unknown; node: StateNode } {
    if (this.entries[lo].path.length !== depth + 1)
      malformed(this.entries[lo].path, 'list without its marker');
    const fracs = new Map<string, string>();
    let i = lo + 1;
    for (; i < hi && this.at(i, depth + 1) === TAG.listIndex; i++) {
      const { path, value } = this.entries[i];
      const id = path[depth + 2];
      const frac = value.toString('latin1');
      if (typeof id !== 'string' || path.length !== depth + 3 || !isFracKey(frac)) {
        malformed(path, 'expected an item position');
      }
      fracs.set(id, frac);
    }
    const decoded = new Map<string, { value: unknown; node: StateNode }>();
    while (i < hi) {
      const id = this.at(i, depth + 2);
      if (this.at(i, depth + 1) !== TAG.listItem || typeof id !== 'string' || !fracs.has(id)) {
        malformed(this.entries[i].path, 'expected an item with a position');
      }
      let j = i + 1;
      while (j < hi && this.at(j, depth + 2) === id) j++;
      decoded.set(id, this.node(i, j, depth + 3));
      i = j;
    }
    if (decoded.size !== fracs.size) malformed(this.entries[lo].path, 'a list position has no item');
    const order = [...fracs.keys()].sort((a, b) => {
      const fa = fracs.get(a) as string;
      const fb = fracs.get(b) as string;
      return fa < fb ? -1 : fa > fb ? 1 : 0;
    });
    const items = new Map<string, ListEntry>();
    const value = order.map((id) => {
      const d = decoded.get(id) as { value: unknown; node: StateNode };
      items.set(id, { frac: fracs.get(id) as string, node: d.node });
      return d.value;
    });
    return { value, node: new ListNode(undefined, false, PersistentMap.of(items), order) };
  }
}

/**
 * Decodes a state from its entries in key order (paths relative to the data prefix). Returns
 * `undefined` when there are none.
 */
export function decodeState(
  entries: readonly StateEntry[],
  serializer: Serializer = cborSerializer,
): { state: unknown; snapshot: StateSnapshot } | undefined {
  if (entries.length === 0) return undefined;
  const { value, node } = new Reader(entries, serializer).node(0, entries.length, 0);
  return { state: value, snapshot: new StateSnapshot(node) };
}
