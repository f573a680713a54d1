import { ownKeys } from './frozen-keys';
import { LIMITS, type TupleItem } from '../backend/types';
import { pack } from '../backend/keys';
import { nBetween } from './frac-index';
import {
  asNotSerializable,
  checkPlainObjectKeys,
  checkText,
  childPath,
  formatPath,
  inspectValue,
  newInspection,
  protoKind,
  rootPath,
  type Inspection,
  type ValuePath,
} from './serializable';
import { cborSerializer, isCheckedSerializer, type Serializer } from './serializer';
import { PersistentMap } from './persistent-map';
import {
  countKeys,
  LeafNode,
  leafDigest,
  ListNode,
  NOT_IMMUTABLE,
  ObjectNode,
  StateSnapshot,
  TAG,
  type ListEntry,
  type StateEntry,
  type StateNode,
} from './state-snapshot';

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
 * frozen item by one comparison; only the items between the unchanged ends are looked up by id (see
 * `list`), and the snapshot's item map is persistent, so changing, appending or removing one item of
 * a frozen 100 000-item list costs a pass of comparisons, not a rebuilt map. Only parts that
 * were verified frozen are skipped by identity, so a caller that changes a mutable part in place is
 * still noticed; a state that is not frozen is diffed correctly, only slower.
 *
 * Shared and cyclic references: when a mutable object is reachable from two parts that would be
 * stored under different keys, the smallest object or list holding both is stored as one value
 * instead (CBOR keeps the sharing there) — exact, at the price of rewriting that value whole.
 * Deep-frozen objects are values: sharing them is not tracked, each place stores its own copy.
 */

/** Largest stored value; a serialized part is split into chunks of this size. */
export const CHUNK_BYTES = LIMITS.valueBytes;
/**
 * Key bytes a nested part may add below the state's prefix. A container whose property names or
 * ids would go past this is stored as one value, so keys stay well under the 10 000-byte key limit.
 */
export const PATH_BUDGET_BYTES = 2_000;
/**
 * Objects with at least this many properties keep their names and immutable values in their
 * snapshot node (two arrays), so that the next diff settles an unchanged property without a lookup.
 */
const FAST_PATH_MIN_PROPS = 16;

export type StateOp =
  | { readonly type: 'set'; readonly path: readonly TupleItem[]; readonly value: Buffer }
  /** Clears the one key at `path`. */
  | { readonly type: 'clear'; readonly path: readonly TupleItem[] }
  /** Clears every key below `path`; `keys` is how many that removes, when the snapshot knows. */
  | { readonly type: 'clearRange'; readonly path: readonly TupleItem[]; readonly keys: number | undefined };

export interface StateDiff {
  /** What is stored once `ops` are applied. */
  readonly snapshot: StateSnapshot;
  readonly ops: readonly StateOp[];
}

const EMPTY = Buffer.alloc(0);
const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
/** Conservative key bytes of a string tuple element (UTF-8 ≤ 3 bytes per UTF-16 unit, plus framing). */
const segmentBytes = (s: string): number => s.length * 3 + 2;

/** Thrown inside a diff when a shared object means the part at `key` must be stored as one value. */
class Restart {
  constructor(readonly key: string) {}
}

function lowestCommonAncestor(a: ValuePath, b: ValuePath): ValuePath {
  const above = new Set<ValuePath>();
  for (let p: ValuePath | undefined = a; p; p = p.parent) above.add(p);
  for (let p: ValuePath | undefined = b; p; p = p.parent) if (above.has(p)) return p;
  throw new Error('state codec: paths from different walks'); // cannot happen: one root per walk
}

/** Indices of a longest run of `fracs` that is already in ascending order (these items keep their keys). */
function longestAscending(fracs: readonly string[]): Set<number> {
  const tails: number[] = [];
  const prev = new Array<number>(fracs.length);
  for (let i = 0; i < fracs.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fracs[tails[mid]] < fracs[i]) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = i;
  }
  const keep = new Set<number>();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) keep.add(i);
  return keep;
}

/** The id of `item` when it can be an id-list item (a plain object with its own string `id`). */
function itemId(item: unknown): string | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  if (protoKind(Object.getPrototypeOf(item)) !== 'object') return undefined;
  if (!hasOwn(item, 'id')) return undefined;
  const id = (item as { id: unknown }).id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * From `i`, the properties of `obj` that are unchanged by the fast path's rule: the same name at
 * the same place as in `oldKeys`, holding the very same value as `oldVals` (which only holds values
 * of immutable parts). Copies their values to `vals`, if given; returns the index of the first
 * other property.
 */
function unchangedRun(
  obj: Record<string, unknown>,
  keys: readonly string[],
  oldKeys: readonly string[],
  oldVals: readonly unknown[],
  vals: unknown[] | undefined,
  i: number,
): number {
  const n = Math.min(keys.length, oldKeys.length);
  if (vals === undefined) {
    for (; i < n; i++) {
      const k = keys[i];
      if (k !== oldKeys[i] || !Object.is(obj[k], oldVals[i])) return i;
    }
    return i;
  }
  for (; i < n; i++) {
    const k = keys[i];
    if (k !== oldKeys[i]) return i;
    const v = obj[k];
    if (!Object.is(v, oldVals[i])) return i;
    vals[i] = v;
  }
  return i;
}

class Differ {
  readonly ops: StateOp[] = [];
  /** Tuple path of the node being diffed, relative to the data prefix. */
  private readonly keyPath: TupleItem[] = [];
  private pathBytes = 0;
  private readonly ins: Inspection;
  private readonly encodeChecked: ((value: unknown, normalize: boolean) => Buffer) | undefined;

  constructor(
    private readonly serializer: Serializer,
    private readonly forced: ReadonlySet<string>,
  ) {
    const checked = isCheckedSerializer(serializer);
    this.encodeChecked = checked ? serializer.encodeChecked.bind(serializer) : undefined;
    // CBOR's rules apply to the CBOR serializer; a custom one decides what it can store.
    this.ins = newInspection(checked);
    this.ins.onShared = (_value, first) => this.shared(first as ValuePath, this.ins.owner as ValuePath);
  }

  private shared(first: ValuePath, current: ValuePath): never {
    const key = formatPath(lowestCommonAncestor(first, current));
    if (this.forced.has(key)) throw new Error(`state codec: ${key} is already stored whole`); // cannot happen
    throw new Restart(key);
  }

  private encode(value: unknown, normalize: boolean, path: ValuePath): Buffer {
    try {
      return this.encodeChecked ? this.encodeChecked(value, normalize) : this.serializer.encode(value);
    } catch (err) {
      throw asNotSerializable(err, path); // a custom serializer may throw anything
    }
  }

  private push(a: string, b?: string, c?: string): void {
    this.keyPath.push(a);
    this.pathBytes += segmentBytes(a);
    if (b !== undefined) {
      this.keyPath.push(b);
      this.pathBytes += segmentBytes(b);
    }
    if (c !== undefined) {
      this.keyPath.push(c);
      this.pathBytes += segmentBytes(c);
    }
  }

  private pop(a: string, b?: string, c?: string): void {
    this.keyPath.pop();
    this.pathBytes -= segmentBytes(a);
    if (b !== undefined) {
      this.keyPath.pop();
      this.pathBytes -= segmentBytes(b);
    }
    if (c !== undefined) {
      this.keyPath.pop();
      this.pathBytes -= segmentBytes(c);
    }
  }

  private here(...more: TupleItem[]): TupleItem[] {
    return more.length ? [...this.keyPath, ...more] : [...this.keyPath];
  }

  /** Whether names or ids of these lengths may become key segments at this depth. */
  private fits(longest: number): boolean {
    // the tag and the name, then at most a list's three segments or a chunk number below it
    return this.pathBytes + segmentBytes('m') + longest * 3 + 2 + 16 <= PATH_BUDGET_BYTES;
  }

  private clearNode(node: StateNode): void {
    if (node.kind === 'leaf' && node.chunks === 1)
      this.ops.push({ type: 'clear', path: this.here(TAG.leaf, 0) });
    else this.ops.push({ type: 'clearRange', path: this.here(), keys: countKeys(node) });
  }

  node(old: StateNode | undefined, value: unknown, path: ValuePath): StateNode {
    // Immutable (a primitive, or deep-frozen) and the very same value: cannot have changed.
    if (old !== undefined && old.immutable && Object.is(old.source, value)) return old;
    if (typeof value === 'object' && value !== null) {
      const kind = protoKind(Object.getPrototypeOf(value));
      if (kind === 'object' || kind === 'array') {
        const ins = this.ins;
        if (ins.seen.has(value) && !ins.immutables.has(value))
          this.shared(ins.seen.get(value) as ValuePath, path);
        const whole = this.forced.size > 0 && this.forced.has(formatPath(path));
        if (!whole && kind === 'object') {
          // Listing the keys is most of the cost of diffing a big object (V8 sorts a large object's
          // keys): reuse the list the runtime made when it froze the state (frozen-keys.ts).
          const keys = ownKeys(value);
          if (ins.strict) checkPlainObjectKeys(value, undefined, path);
          let longest = 0;
          for (let i = 0; i < keys.length; i++) if (keys[i].length > longest) longest = keys[i].length;
          if (this.fits(longest)) {
            ins.seen.set(value, path);
            if (old !== undefined && old.kind !== 'object') {
              this.clearNode(old);
              old = undefined;
            }
            return this.object(old, value as Record<string, unknown>, keys, path);
          }
        } else if (!whole) {
          const list = this.list(old, value as unknown[], path);
          if (list !== undefined) return list;
        }
      }
    }
    if (old !== undefined && old.kind !== 'leaf') {
      this.clearNode(old);
      old = undefined;
    }
    return this.leaf(old, value, path);
  }

  private leaf(old: LeafNode | undefined, value: unknown, path: ValuePath): LeafNode {
    if (typeof value !== 'object' || value === null) {
      // a primitive (an unchanged one was caught by node()); functions, symbols and strings with a lone
      // surrogate are rejected here
      const t = typeof value;
      if (t === 'function' || t === 'symbol' || t === 'string') inspectValue(value, path, this.ins);
      const bytes = this.encode(value, value === 0 && 1 / (value as number) < 0, path);
      return this.writeLeaf(old, bytes, value, true, true, undefined);
    }
    this.ins.owner = path;
    this.ins.normalize = false;
    const immutable = inspectValue(value, path, this.ins);
    const bytes = this.encode(value, this.ins.normalize, path);
    const digest = leafDigest(bytes);
    const source = immutable ? value : undefined;
    if (old !== undefined && !old.primitive && old.size === bytes.length && old.digest?.equals(digest)) {
      return old.source === source && old.immutable === immutable
        ? old
        : new LeafNode(source, immutable, old.chunks, old.size, false, old.digest);
    }
    return this.writeLeaf(old, bytes, source, immutable, false, digest);
  }

  private writeLeaf(
    old: LeafNode | undefined,
    bytes: Buffer,
    source: unknown,
    immutable: boolean,
    primitive: boolean,
    digest: Buffer | undefined,
  ): LeafNode {
    const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
    for (let i = 0; i < chunks; i++) {
      const value = bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
      this.ops.push({ type: 'set', path: this.here(TAG.leaf, i), value });
    }
    for (let i = chunks; i < (old?.chunks ?? 0); i++)
      this.ops.push({ type: 'clear', path: this.here(TAG.leaf, i) });
    return new LeafNode(source, immutable, chunks, bytes.length, primitive, digest);
  }

  private object(
    old: ObjectNode | undefined,
    obj: Record<string, unknown>,
    keys: readonly string[],
    path: ValuePath,
  ): ObjectNode {
    const oldProps = old?.props;
    if (oldProps === undefined) this.ops.push({ type: 'set', path: this.here(TAG.object), value: EMPTY });
    let changes: Map<string, StateNode | null> | undefined;
    let childrenImmutable = true;
    let matched = 0;
    // This loop runs once per property on every write, so for an object of many properties the
    // common case (the same name at the same place holding the very same immutable value as last
    // time) costs one property load and two array reads: no snapshot lookup, no allocation.
    // Immutable means a primitive or a part that was found deep-frozen when it was stored, so it
    // cannot have changed in place; parts that are not immutable are NOT_IMMUTABLE in `oldVals` and
    // always looked at. A small object is not worth the arrays' memory: its properties are looked
    // up in the snapshot.
    const track = keys.length >= FAST_PATH_MIN_PROPS;
    const oldKeys = old?.keys;
    const oldVals = old?.vals;
    const nOld = oldKeys !== undefined && oldVals !== undefined ? oldKeys.length : 0;
    let sameKeys = nOld === keys.length;
    // as long as the names stay in place, the new values differ from the old only where written below
    const vals = !track
      ? undefined
      : sameKeys
        ? (oldVals as readonly unknown[]).slice()
        : new Array<unknown>(keys.length);
    const runVals = sameKeys ? undefined : vals;
    const base = oldProps?.base;
    const overlay = oldProps?.overlay;
    for (let i = 0; i < keys.length; i++) {
      if (i < nOld) {
        // the fast path, in a tight loop of its own: up to the next property it cannot settle
        const j = unchangedRun(
          obj,
          keys,
          oldKeys as readonly string[],
          oldVals as readonly unknown[],
          runVals,
          i,
        );
        matched += j - i;
        i = j;
        if (i === keys.length) break;
      }
      const k = keys[i];
      const v = obj[k];
      if (i >= nOld || k !== (oldKeys as readonly string[])[i]) sameKeys = false;
      // PersistentMap.get, inlined
      let before = overlay?.get(k);
      if (before === undefined) before = base?.get(k);
      else if (before === null) before = undefined;
      if (before !== undefined) {
        matched++;
        if (before.immutable && Object.is(before.source, v)) {
          if (vals !== undefined) vals[i] = v;
          continue;
        }
      }
      if (before === undefined && this.ins.strict) checkText(k, childPath(path, k), 'has a property name');
      this.push(TAG.object, k);
      const after = this.node(before, v, childPath(path, k));
      this.pop(TAG.object, k);
      if (!after.immutable) childrenImmutable = false;
      if (vals !== undefined) vals[i] = after.immutable ? v : NOT_IMMUTABLE;
      if (after !== before) (changes ??= new Map()).set(k, after);
    }
    if (oldProps !== undefined && matched < oldProps.size) {
      for (const [k, child] of oldProps) {
        if (hasOwn(obj, k)) continue;
        this.push(TAG.object, k);
        this.clearNode(child);
        this.pop(TAG.object, k);
        (changes ??= new Map()).set(k, null);
      }
    }
    // Object.isFrozen walks every property of a large object, so only when it can matter: not when a
    // part is mutable anyway, and not for the state itself, whose immutability would only let a diff
    // of the very same state object be skipped (the runtime does not write a state it got back
    // unchanged; such a diff still finds no change, through the loop above).
    const immutable = childrenImmutable && path.parent !== undefined && Object.isFrozen(obj);
    const source = immutable ? obj : undefined;
    if (immutable) this.ins.immutables.add(obj);
    if (
      old !== undefined &&
      changes === undefined &&
      (track ? sameKeys : oldKeys === undefined) &&
      old.source === source &&
      old.immutable === immutable
    )
      return old;
    const props =
      oldProps === undefined
        ? PersistentMap.of((changes ?? new Map()) as Map<string, StateNode>) // everything is new
        : changes === undefined
          ? oldProps
          : oldProps.with(changes);
    return track
      ? new ObjectNode(source, immutable, props, keys, vals)
      : new ObjectNode(source, immutable, props);
  }

  /**
   * Diffs `arr` as an id-list against `old`, or returns `undefined` (having done nothing) when `arr`
   * is not an id-list: plain objects each with its own distinct string `id`, short enough to fit.
   *
   * Old and new are walked in parallel from both ends: a position holding the very same immutable
   * item as last time is settled with one comparison (no lookup, no id check: a frozen item's id
   * cannot have changed), and one holding an item with the same id is diffed in place. What lies
   * between the longest such prefix and suffix — where items were inserted, removed or moved — is
   * diffed by id, and there only the items that leave the longest run still in order get a new
   * position key. So a one-item update of a long frozen list costs a pass of identity comparisons
   * plus the changed item; appending or removing one item adds a copy of the id order.
   */
  private list(old: StateNode | undefined, arr: unknown[], path: ValuePath): ListNode | undefined {
    const prev = old !== undefined && old.kind === 'list' ? old : undefined;
    const n = arr.length;
    // most arrays that are not id-lists show it at once
    if (prev === undefined && n > 0 && itemId(arr[0]) === undefined) return undefined;
    const m = prev !== undefined ? prev.length : 0;
    // per old position, the item when immutable (the same value met there again is unchanged)
    const oldVals =
      prev === undefined ? undefined : prev.immutable ? (prev.source as readonly unknown[]) : prev.vals;

    // Phase 1, no side effects: the unchanged prefix and suffix, and whether this is an id-list.
    const headTouched: number[] = []; // positions of the prefix holding another item with the same id
    const tailTouched: number[] = []; // the same in the suffix, from the end
    const lim = n < m ? n : m;
    let p = 0;
    if (oldVals !== undefined) {
      for (; p < lim; p++) {
        const item = arr[p];
        if (item === oldVals[p]) continue;
        if (itemId(item) !== (prev as ListNode).idAt(p)) break;
        headTouched.push(p);
      }
    } else {
      for (; p < lim && itemId(arr[p]) === (prev as ListNode).idAt(p); p++) headTouched.push(p);
    }
    let s = 0;
    while (s < n - p && s < m - p) {
      const item = arr[n - 1 - s];
      const k = m - 1 - s;
      if (oldVals === undefined || item !== oldVals[k]) {
        if (itemId(item) !== (prev as ListNode).idAt(k)) break;
        tailTouched.push(n - 1 - s);
      }
      s++;
    }
    const end = n - s; // the new middle is [p, end)
    const oldEnd = m - s; // the old middle is [p, oldEnd)
    const midIds = new Array<string>(end - p);
    const present = new Set<string>();
    let longest = 0;
    for (let j = p; j < end; j++) {
      const id = itemId(arr[j]);
      if (id === undefined || present.has(id)) return undefined;
      present.add(id);
      midIds[j - p] = id;
      if (id.length > longest) longest = id.length;
    }
    // (the ids of the prefix and suffix are the old ones, which fit here)
    if (!this.fits(longest)) return undefined;
    const oldItems = prev?.items;
    if (oldItems !== undefined && end > p && (p > 0 || s > 0)) {
      // an id of the new middle that the old list held outside its middle is also in the new prefix
      // or suffix: not an id-list
      const oldMid = new Set<string>();
      for (let k = p; k < oldEnd; k++) oldMid.add((prev as ListNode).idAt(k));
      for (let i = 0; i < midIds.length; i++)
        if (!oldMid.has(midIds[i]) && oldItems.has(midIds[i])) return undefined;
    }

    // Phase 2: the operations.
    if (old !== undefined && prev === undefined) this.clearNode(old);
    this.ins.seen.set(arr, path);
    if (prev === undefined) this.ops.push({ type: 'set', path: this.here(TAG.list), value: EMPTY });
    const changes = new Map<string, ListEntry | null>();
    const mutableAt: number[] = []; // positions whose part is not immutable

    // Removed items (only in the old middle): their position key and everything below the item.
    for (let k = p; k < oldEnd; k++) {
      const id = (prev as ListNode).idAt(k);
      if (present.has(id)) continue;
      this.ops.push({ type: 'clear', path: this.here(TAG.list, TAG.listIndex, id) });
      this.push(TAG.list, TAG.listItem, id);
      this.clearNode(((oldItems as PersistentMap<string, ListEntry>).get(id) as ListEntry).node);
      this.pop(TAG.list, TAG.listItem, id);
      changes.set(id, null);
    }

    // An item of the prefix or suffix in its old place, not the very same immutable value: diff it.
    const inPlace = (j: number, id: string): void => {
      const before = (oldItems as PersistentMap<string, ListEntry>).get(id) as ListEntry;
      this.push(TAG.list, TAG.listItem, id);
      const node = this.node(before.node, arr[j], childPath(path, j));
      this.pop(TAG.list, TAG.listItem, id);
      if (!node.immutable) mutableAt.push(j);
      if (node !== before.node) changes.set(id, { frac: before.frac, node });
    };
    for (const j of headTouched) inPlace(j, (prev as ListNode).idAt(j));

    if (end > p) this.middle(arr, path, p, end, midIds, prev, changes, mutableAt, oldEnd);

    for (let i = tailTouched.length - 1; i >= 0; i--) {
      const j = tailTouched[i];
      inPlace(j, (prev as ListNode).idAt(j - n + m));
    }

    const immutable = mutableAt.length === 0 && Object.isFrozen(arr);
    const source = immutable ? arr : undefined;
    if (immutable) this.ins.immutables.add(arr);
    const moved = end > p || oldEnd > p;
    if (
      prev !== undefined &&
      changes.size === 0 &&
      !moved &&
      prev.source === source &&
      prev.immutable === immutable
    )
      return prev;
    // the ids in order, kept only when the list is not immutable (else its source array holds them)
    let order: string[] | undefined;
    if (!immutable) {
      if (p === 0 && s === 0) order = midIds;
      else {
        order = new Array<string>(n);
        const old = prev as ListNode;
        for (let j = 0; j < p; j++) order[j] = old.idAt(j);
        for (let j = p; j < end; j++) order[j] = midIds[j - p];
        for (let j = end; j < n; j++) order[j] = old.idAt(j - n + m);
      }
    }
    const items =
      oldItems === undefined
        ? PersistentMap.of(changes as Map<string, ListEntry>) // everything is new
        : oldItems.with(changes);
    let vals: unknown[] | undefined;
    if (!immutable) {
      vals = arr.slice();
      for (const j of mutableAt) vals[j] = NOT_IMMUTABLE;
    }
    return new ListNode(source, immutable, items, order, vals);
  }

  /**
   * The middle of a list diff: positions [p, end) of `arr` (ids `midIds`), where the old list held
   * positions [p, oldEnd) of `prev`. The items that keep their position key are the longest run of them
   * already in order; the others get new keys between their neighbours'.
   */
  private middle(
    arr: unknown[],
    path: ValuePath,
    p: number,
    end: number,
    midIds: readonly string[],
    prev: ListNode | undefined,
    changes: Map<string, ListEntry | null>,
    mutableAt: number[],
    oldEnd: number,
  ): void {
    const oldItems = prev?.items;
    const len = end - p;
    const befores = new Array<ListEntry | undefined>(len);
    const commonAt: number[] = [];
    const commonFracs: string[] = [];
    if (oldItems !== undefined) {
      for (let i = 0; i < len; i++) {
        const e = oldItems.get(midIds[i]);
        befores[i] = e;
        if (e !== undefined) {
          commonAt.push(i);
          commonFracs.push(e.frac);
        }
      }
    }
    const keep = new Array<boolean>(len).fill(false);
    let ordered = true;
    for (let i = 1; i < commonFracs.length && ordered; i++) ordered = commonFracs[i - 1] < commonFracs[i];
    if (ordered) for (const i of commonAt) keep[i] = true;
    else for (const i of longestAscending(commonFracs)) keep[commonAt[i]] = true;

    // the neighbours' keys: the end of the prefix and the start of the suffix keep theirs
    const fracAt = (k: number): string =>
      ((prev as ListNode).items.get((prev as ListNode).idAt(k)) as ListEntry).frac;
    const lo = p > 0 ? fracAt(p - 1) : undefined;
    const hi = prev !== undefined && oldEnd < prev.length ? fracAt(oldEnd) : undefined;
    const fracs = new Array<string>(len);
    for (let i = 0; i < len;) {
      if (keep[i]) {
        fracs[i] = (befores[i] as ListEntry).frac;
        i++;
        continue;
      }
      const start = i;
      while (i < len && !keep[i]) i++;
      const a = start > 0 ? fracs[start - 1] : lo;
      const b = i < len ? (befores[i] as ListEntry).frac : hi;
      const made = nBetween(a, b, i - start);
      for (let k = 0; k < made.length; k++) fracs[start + k] = made[k];
    }

    for (let i = 0; i < len; i++) {
      const id = midIds[i];
      const j = p + i;
      const before = befores[i];
      const frac = fracs[i];
      const item = arr[j];
      let entry: ListEntry;
      if (
        before !== undefined &&
        before.frac === frac &&
        before.node.immutable &&
        before.node.source === item
      ) {
        entry = before; // unchanged and in place
      } else {
        if (before === undefined || before.frac !== frac) {
          const value = Buffer.from(frac, 'latin1');
          this.ops.push({ type: 'set', path: this.here(TAG.list, TAG.listIndex, id), value });
        }
        this.push(TAG.list, TAG.listItem, id);
        const node = this.node(before?.node, item, childPath(path, j));
        this.pop(TAG.list, TAG.listItem, id);
        entry =
          before !== undefined && before.frac === frac && before.node === node ? before : { frac, node };
      }
      if (!entry.node.immutable) mutableAt.push(j);
      if (entry !== before) changes.set(id, entry);
    }
  }
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
    const differ = new Differ(serializer, forced);
    try {
      if (old === undefined) differ.ops.push({ type: 'clearRange', path: [], keys: undefined });
      const root = differ.node(old?.root, next, rootPath('state'));
      return {
        snapshot: old !== undefined && root === old.root ? old : new StateSnapshot(root),
        ops: differ.ops,
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
