import { childPath, protoKind, type ValuePath } from './serializable';
import { PersistentMap } from './persistent-map';
import { diffListMiddle } from './state-diff-list-middle';
import { EMPTY } from './state-diff-ops';
import type { DiffWalk } from './state-diff-walk';
import { ListNode, NOT_IMMUTABLE, TAG, type ListEntry, type StateNode } from './state-snapshot';

/**
 * An id-list: an array of plain objects with distinct string `id`s, stored one key per item under
 * its id, in the order of a fractional-index position key per item (see state-diff.ts).
 */

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** The id of `item` when it can be an id-list item (a plain object with its own string `id`). */
function itemId(item: unknown): string | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  if (protoKind(Object.getPrototypeOf(item)) !== 'object') return undefined;
  if (!hasOwn(item, 'id')) return undefined;
  const id = (item as { id: unknown }).id;
  return typeof id === 'string' ? id : undefined;
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
export function diffList(
  w: DiffWalk,
  old: StateNode | undefined,
  arr: unknown[],
  path: ValuePath,
): ListNode | undefined {
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
  if (!w.fits(longest)) return undefined;
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
  if (old !== undefined && prev === undefined) w.clearNode(old);
  w.ins.seen.set(arr, path);
  if (prev === undefined) w.ops.push({ type: 'set', path: w.here(TAG.list), value: EMPTY });
  const changes = new Map<string, ListEntry | null>();
  const mutableAt: number[] = []; // positions whose part is not immutable

  // Removed items (only in the old middle): their position key and everything below the item.
  for (let k = p; k < oldEnd; k++) {
    const id = (prev as ListNode).idAt(k);
    if (present.has(id)) continue;
    w.ops.push({ type: 'clear', path: w.here(TAG.list, TAG.listIndex, id) });
    w.push(TAG.list, TAG.listItem, id);
    w.clearNode(((oldItems as PersistentMap<string, ListEntry>).get(id) as ListEntry).node);
    w.pop(TAG.list, TAG.listItem, id);
    changes.set(id, null);
  }

  // An item of the prefix or suffix in its old place, not the very same immutable value: diff it.
  const inPlace = (j: number, id: string): void => {
    const before = (oldItems as PersistentMap<string, ListEntry>).get(id) as ListEntry;
    w.push(TAG.list, TAG.listItem, id);
    const node = w.node(before.node, arr[j], childPath(path, j));
    w.pop(TAG.list, TAG.listItem, id);
    if (!node.immutable) mutableAt.push(j);
    if (node !== before.node) changes.set(id, { frac: before.frac, node });
  };
  for (const j of headTouched) inPlace(j, (prev as ListNode).idAt(j));

  if (end > p) diffListMiddle(w, arr, path, p, end, midIds, prev, changes, mutableAt, oldEnd);

  for (let i = tailTouched.length - 1; i >= 0; i--) {
    const j = tailTouched[i];
    inPlace(j, (prev as ListNode).idAt(j - n + m));
  }

  const immutable = mutableAt.length === 0 && Object.isFrozen(arr);
  const source = immutable ? arr : undefined;
  if (immutable) w.ins.immutables.add(arr);
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
