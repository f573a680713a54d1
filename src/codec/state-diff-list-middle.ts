import { nBetween } from './frac-index';
import { childPath, type ValuePath } from './serializable';
import type { DiffWalk } from './state-diff-walk';
import { TAG, type ListEntry, type ListNode } from './state-snapshot';

/**
 * Where items of an id-list were inserted, removed or moved (see state-diff-list.ts): which items
 * keep their fractional-index position key, new keys for the others between their neighbours', and
 * the diff of each item there.
 */

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

/**
 * The middle of a list diff: positions [p, end) of `arr` (ids `midIds`), where the old list held
 * positions [p, oldEnd) of `prev`. The items that keep their position key are the longest run of them
 * already in order; the others get new keys between their neighbours'.
 */
export function diffListMiddle(
  w: DiffWalk,
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
        w.ops.push({ type: 'set', path: w.here(TAG.list, TAG.listIndex, id), value });
      }
      w.push(TAG.list, TAG.listItem, id);
      const node = w.node(before?.node, item, childPath(path, j));
      w.pop(TAG.list, TAG.listItem, id);
      entry = before !== undefined && before.frac === frac && before.node === node ? before : { frac, node };
    }
    if (!entry.node.immutable) mutableAt.push(j);
    if (entry !== before) changes.set(id, entry);
  }
}
