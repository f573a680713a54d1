import { checkText, childPath, type ValuePath } from './serializable';
import { PersistentMap } from './persistent-map';
import { EMPTY } from './state-diff-ops';
import type { DiffWalk } from './state-diff-walk';
import { NOT_IMMUTABLE, ObjectNode, TAG, type StateNode } from './state-snapshot';

/** A plain object, stored one key per property (see state-diff.ts). */

/**
 * Objects with at least this many properties keep their names and immutable values in their
 * snapshot node (two arrays), so that the next diff settles an unchanged property without a lookup.
 */
const FAST_PATH_MIN_PROPS = 16;

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

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

/**
 * Diffs `obj`, whose own property names are `keys`, against the object stored as `old` (none: the
 * object is written anew): changed properties are diffed, removed ones cleared.
 */
export function diffObject(
  w: DiffWalk,
  old: ObjectNode | undefined,
  obj: Record<string, unknown>,
  keys: readonly string[],
  path: ValuePath,
): ObjectNode {
  const oldProps = old?.props;
  if (oldProps === undefined) w.ops.push({ type: 'set', path: w.here(TAG.object), value: EMPTY });
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
    if (before === undefined && w.ins.strict) checkText(k, childPath(path, k), 'has a property name');
    w.push(TAG.object, k);
    const after = w.node(before, v, childPath(path, k));
    w.pop(TAG.object, k);
    if (!after.immutable) childrenImmutable = false;
    if (vals !== undefined) vals[i] = after.immutable ? v : NOT_IMMUTABLE;
    if (after !== before) (changes ??= new Map()).set(k, after);
  }
  if (oldProps !== undefined && matched < oldProps.size) {
    for (const [k, child] of oldProps) {
      if (hasOwn(obj, k)) continue;
      w.push(TAG.object, k);
      w.clearNode(child);
      w.pop(TAG.object, k);
      (changes ??= new Map()).set(k, null);
    }
  }
  // Object.isFrozen walks every property of a large object, so only when it can matter: not when a
  // part is mutable anyway, and not for the state itself, whose immutability would only let a diff
  // of the very same state object be skipped (the runtime does not write a state it got back
  // unchanged; such a diff still finds no change, through the loop above).
  const immutable = childrenImmutable && path.parent !== undefined && Object.isFrozen(obj);
  const source = immutable ? obj : undefined;
  if (immutable) w.ins.immutables.add(obj);
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
