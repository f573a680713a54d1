import type { TupleItem } from '../backend/types';
import { ownKeys } from './frozen-keys';
import {
  asNotSerializable,
  checkPlainObjectKeys,
  formatPath,
  newInspection,
  protoKind,
  type Inspection,
  type ValuePath,
} from './serializable';
import { isCheckedSerializer, type Serializer } from './serializer';
import { diffLeaf } from './state-diff-leaf';
import { diffList } from './state-diff-list';
import { diffObject } from './state-diff-object';
import { PATH_BUDGET_BYTES, segmentBytes, type StateOp } from './state-diff-ops';
import { countKeys, TAG, type StateNode } from './state-snapshot';

/**
 * One walk of a diff (see state-diff.ts): the operations so far, the key path of the node being
 * diffed, and the inspection of the new state. `node` picks how a value is stored and hands it to the
 * object, list or leaf diff, which call back into `node` for their children.
 */

/** Thrown inside a diff when a shared object means the part at `key` must be stored as one value. */
export class Restart {
  constructor(readonly key: string) {}
}

function lowestCommonAncestor(a: ValuePath, b: ValuePath): ValuePath {
  const above = new Set<ValuePath>();
  for (let p: ValuePath | undefined = a; p; p = p.parent) above.add(p);
  for (let p: ValuePath | undefined = b; p; p = p.parent) if (above.has(p)) return p;
  throw new Error('state codec: paths from different walks'); // cannot happen: one root per walk
}

export class DiffWalk {
  readonly ops: StateOp[] = [];
  readonly ins: Inspection;
  /** Tuple path of the node being diffed, relative to the data prefix. */
  private readonly keyPath: TupleItem[] = [];
  private pathBytes = 0;
  private readonly encodeChecked: ((value: unknown, normalize: boolean) => Buffer) | undefined;

  constructor(
    private readonly serializer: Serializer,
    /** Paths of the parts to store as one value, because a shared object was found below them. */
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

  encode(value: unknown, normalize: boolean, path: ValuePath): Buffer {
    try {
      return this.encodeChecked ? this.encodeChecked(value, normalize) : this.serializer.encode(value);
    } catch (err) {
      throw asNotSerializable(err, path); // a custom serializer may throw anything
    }
  }

  push(a: string, b?: string, c?: string): void {
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

  pop(a: string, b?: string, c?: string): void {
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

  /** The key path of the node being diffed, with `more` appended. */
  here(...more: TupleItem[]): TupleItem[] {
    return more.length ? [...this.keyPath, ...more] : [...this.keyPath];
  }

  /** Whether names or ids of these lengths may become key segments at this depth. */
  fits(longest: number): boolean {
    // the tag and the name, then at most a list's three segments or a chunk number below it
    return this.pathBytes + segmentBytes('m') + longest * 3 + 2 + 16 <= PATH_BUDGET_BYTES;
  }

  clearNode(node: StateNode): void {
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
            return diffObject(this, old, value as Record<string, unknown>, keys, path);
          }
        } else if (!whole) {
          const list = diffList(this, old, value as unknown[], path);
          if (list !== undefined) return list;
        }
      }
    }
    if (old !== undefined && old.kind !== 'leaf') {
      this.clearNode(old);
      old = undefined;
    }
    return diffLeaf(this, old, value, path);
  }
}
