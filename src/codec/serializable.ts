import { DgenError, SerializationError } from '../errors';
import { isWellFormed } from '../text';

export { isWellFormed };

/**
 * What a stored value may contain, checked before anything is encoded so that a value which would
 * not come back the same is rejected (NOT_SERIALIZABLE, naming where it is) instead of silently
 * changed: plain objects and arrays, primitives (including `undefined`, `NaN`, `-0` and BigInt),
 * `Map`, `Set`, `Date`, `RegExp`, `Buffer` and typed arrays. Shared and cyclic references are fine.
 */

/** One step from a value to a part of it, for messages such as `state.accounts[3].onChange`. */
export type PathStep =
  | string
  | number
  | { readonly mapValue: unknown; readonly index: number }
  | { readonly mapKey: number }
  | { readonly setItem: number };

/** A path as a linked list from the part back to the root, built as the walk goes (cheap to extend). */
export interface ValuePath {
  readonly parent: ValuePath | undefined;
  /** For the root: its name (`state`, `value`). */
  readonly step: PathStep;
}

export const rootPath = (name: string): ValuePath => ({ parent: undefined, step: name });
export const childPath = (parent: ValuePath, step: PathStep): ValuePath => ({ parent, step });

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function describeKey(key: unknown, index: number): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'number' || typeof key === 'boolean' || key === null || key === undefined)
    return String(key);
  if (typeof key === 'bigint') return `${key}n`;
  return `<key #${index}>`;
}

export function formatPath(path: ValuePath): string {
  const steps: PathStep[] = [];
  for (let p: ValuePath | undefined = path; p; p = p.parent) steps.push(p.step);
  steps.reverse();
  let out = String(steps[0]);
  for (let i = 1; i < steps.length; i++) {
    const s = steps[i];
    if (typeof s === 'number') out += `[${s}]`;
    else if (typeof s === 'string') out += IDENTIFIER.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
    else if ('mapValue' in s) out += `.get(${describeKey(s.mapValue, s.index)})`;
    else if ('mapKey' in s) out += `.<map key #${s.mapKey}>`;
    else out += `.<set item #${s.setItem}>`;
  }
  return out;
}

/** Throws NOT_SERIALIZABLE for a string (a value or a property name) holding a lone surrogate. */
export function checkText(s: string, path: ValuePath, what = 'is a string'): void {
  if (!isWellFormed(s))
    reject(
      path,
      `${what} with a lone UTF-16 surrogate, which storage (UTF-8) would turn into U+FFFD`,
      'remove the unpaired surrogate, or store the text as bytes (Buffer)',
    );
}

/**
 * An encoder's own error as NOT_SERIALIZABLE naming `path` (a DgenError passes through): whatever a
 * serializer throws is about the value, so it must count against the message that made it.
 */
export function asNotSerializable(err: unknown, path: ValuePath): DgenError {
  if (err instanceof DgenError) return err;
  return new SerializationError(
    'NOT_SERIALIZABLE',
    `${formatPath(path)} could not be encoded: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

function reject(path: ValuePath, what: string, hint: string): never {
  throw new SerializationError(
    'NOT_SERIALIZABLE',
    `${formatPath(path)} cannot be stored: it ${what}; ${hint}`,
  );
}

/** Prototypes of the built-ins the CBOR serializer restores as themselves. */
const LEAF_PROTOTYPES: ReadonlySet<object> = new Set<object>([
  RegExp.prototype,
  Buffer.prototype,
  Uint8Array.prototype,
  Uint8ClampedArray.prototype,
  Int8Array.prototype,
  Uint16Array.prototype,
  Int16Array.prototype,
  Uint32Array.prototype,
  Int32Array.prototype,
  Float32Array.prototype,
  Float64Array.prototype,
  BigInt64Array.prototype,
  BigUint64Array.prototype,
]);

/** What a prototype makes of an object, for the kinds the codec treats specially. */
export type ProtoKind = 'object' | 'array' | 'map' | 'set' | 'date' | 'leaf';

const NATIVE_KINDS: Readonly<Record<string, ProtoKind>> = {
  Object: 'object',
  Array: 'array',
  Map: 'map',
  Set: 'set',
  Date: 'date',
  RegExp: 'leaf',
  Uint8Array: 'leaf',
  Uint8ClampedArray: 'leaf',
  Int8Array: 'leaf',
  Uint16Array: 'leaf',
  Int16Array: 'leaf',
  Uint32Array: 'leaf',
  Int32Array: 'leaf',
  Float32Array: 'leaf',
  Float64Array: 'leaf',
  BigInt64Array: 'leaf',
  BigUint64Array: 'leaf',
};
const NATIVE_CODE = /\{\s*\[native code\]\s*\}\s*$/;
export interface ProtoInfo {
  readonly kind: ProtoKind;
  /** Whether it is this realm's built-in (cbor-x only recognises those). */
  readonly local: boolean;
}
const LOCAL_OBJECT: ProtoInfo = { kind: 'object', local: true };
const LOCAL_ARRAY: ProtoInfo = { kind: 'array', local: true };
const protoInfos = new WeakMap<object, ProtoInfo | null>([
  [Map.prototype, { kind: 'map', local: true }],
  [Set.prototype, { kind: 'set', local: true }],
  [Date.prototype, { kind: 'date', local: true }],
  ...[...LEAF_PROTOTYPES].map((p): [object, ProtoInfo] => [p, { kind: 'leaf', local: true }]),
]);

/**
 * What objects with prototype `proto` are, or `undefined` for anything else (class instances, null
 * prototypes). Built-ins of another realm (a `vm` context, Jest's sandbox, `structuredClone` from
 * outside it) count as the built-in, marked not local: they are copied into this realm's before
 * encoding, and come back as this realm's, which is the same data.
 */
export function protoInfo(proto: unknown): ProtoInfo | undefined {
  if (proto === Object.prototype) return LOCAL_OBJECT;
  if (proto === Array.prototype) return LOCAL_ARRAY;
  if (typeof proto !== 'object' || proto === null) return undefined;
  let info = protoInfos.get(proto);
  if (info === undefined) {
    const ctor = (proto as { constructor?: unknown }).constructor;
    const native =
      typeof ctor === 'function' &&
      (ctor as { prototype?: unknown }).prototype === proto &&
      NATIVE_CODE.test(Function.prototype.toString.call(ctor));
    const kind = native ? NATIVE_KINDS[ctor.name] : undefined;
    info = kind ? { kind, local: false } : null;
    protoInfos.set(proto, info);
  }
  return info ?? undefined;
}

export const protoKind = (proto: unknown): ProtoKind | undefined => protoInfo(proto)?.kind;

/** The walk's memory, shared across calls so that sharing between separately stored parts is seen. */
export interface Inspection {
  /** Reject what CBOR cannot bring back (true), or only walk (a custom serializer decides for itself). */
  readonly strict: boolean;
  /** Every object met so far, with the owner that was current when it was first met. */
  readonly seen: Map<object, unknown>;
  /** Objects found deep-frozen: they cannot change, so they behave as values (sharing them is not tracked). */
  readonly immutables: Set<object>;
  /** Who is walking now (the state codec: the stored part being encoded). */
  owner: unknown;
  /** Set when the value must be copied before CBOR sees it: it holds a -0 or another realm's built-ins. */
  normalize: boolean;
  /** Called when a mutable object first met under another owner is met again (shared or cyclic). */
  onShared?: (value: object, firstOwner: unknown, path: ValuePath) => void;
}

export const newInspection = (strict = true, owner: unknown = undefined): Inspection => ({
  strict,
  seen: new Map(),
  immutables: new Set(),
  owner,
  normalize: false,
});

/**
 * Throws NOT_SERIALIZABLE naming the first part of `value` that cannot be stored faithfully.
 * Returns whether `value` is immutable: a primitive, or plain objects and arrays frozen all the way
 * down to primitives (what the runtime's deepFreeze makes); such a value can be compared by identity.
 */
export function inspectValue(value: unknown, path: ValuePath, ins: Inspection): boolean {
  switch (typeof value) {
    case 'string':
      if (ins.strict) checkText(value, path);
      return true;
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return true;
    case 'number':
      if (value === 0 && 1 / value < 0) ins.normalize = true;
      return true;
    case 'symbol':
      if (ins.strict) reject(path, 'is a symbol', 'use a string');
      return true;
    case 'function':
      if (ins.strict) reject(path, 'is a function', 'keep behaviour in the class and only data in the state');
      return false;
  }
  if (value === null) return true;
  const obj = value as object;
  if (ins.seen.has(obj)) {
    if (ins.immutables.has(obj)) return true;
    const first = ins.seen.get(obj);
    if (first !== ins.owner) ins.onShared?.(obj, first, path);
    return false; // already checked (and a cycle must not be followed twice)
  }
  ins.seen.set(obj, ins.owner);
  const proto: unknown = Object.getPrototypeOf(obj);
  const info = protoInfo(proto);
  const kind = info?.kind;
  if (info !== undefined && !info.local) ins.normalize = true;
  let immutable = false;
  if (kind === 'object') {
    immutable = inspectPlainObject(obj as Record<string, unknown>, path, ins);
  } else if (kind === 'array') {
    const arr = obj as unknown[];
    immutable = Object.isFrozen(arr);
    for (let i = 0; i < arr.length; i++) {
      const item = arr[i];
      if (item === undefined && !(i in arr) && ins.strict) {
        reject(childPath(path, i), 'is a hole in a sparse array', 'fill it (for example with undefined)');
      }
      if (!inspectValue(item, childPath(path, i), ins)) immutable = false;
    }
  } else if (kind === 'map') {
    let i = 0;
    for (const [k, v] of obj as Map<unknown, unknown>) {
      inspectValue(k, childPath(path, { mapKey: i }), ins);
      inspectValue(v, childPath(path, { mapValue: k, index: i }), ins);
      i++;
    }
  } else if (kind === 'set') {
    let i = 0;
    for (const v of obj as Set<unknown>) inspectValue(v, childPath(path, { setItem: i++ }), ins);
  } else if (kind === 'date') {
    const t = (obj as Date).getTime();
    // CBOR stores epoch seconds as a float; beyond ±2^52 ms (year ±142 000) that loses milliseconds.
    if (!Number.isNaN(t) && Math.round((t / 1000) * 1000) !== t && ins.strict) {
      reject(
        path,
        `is a Date too far from 1970 to keep its milliseconds (${t})`,
        'store the number of milliseconds',
      );
    }
  } else if (kind === undefined && ins.strict) {
    rejectInstance(proto, path);
  }
  if (immutable) ins.immutables.add(obj);
  return immutable;
}

/** Throws NOT_SERIALIZABLE for an object whose prototype is not one CBOR restores. */
export function rejectInstance(proto: unknown, path: ValuePath): never {
  if (proto === null) reject(path, 'is an object with a null prototype', 'use a plain object or a Map');
  const ctor = (proto as { constructor?: { name?: unknown } }).constructor;
  const name = typeof ctor?.name === 'string' && ctor.name ? ctor.name : 'an unnamed class';
  return reject(
    path,
    `is an instance of ${name}, which would come back as a plain object`,
    'store plain data (objects, arrays, Map, Set, Date, Buffer) and rebuild the instance when you read it',
  );
}

/**
 * Throws NOT_SERIALIZABLE if a plain object has keys that would not come back (symbols, own __proto__,
 * and, when `keys` are given, names with a lone surrogate).
 */
export function checkPlainObjectKeys(
  obj: object,
  keys: readonly string[] | undefined,
  path: ValuePath,
): void {
  if (Object.getOwnPropertySymbols(obj).length > 0) {
    reject(path, 'has symbol-keyed properties', 'use string keys or a Map');
  }
  if (keys === undefined ? hasOwnProto(obj) : keys.includes('__proto__')) rejectProtoKey(path);
  if (keys !== undefined) for (const key of keys) checkText(key, childPath(path, key), 'has a property name');
}

const hasOwnProto = (obj: object): boolean => Object.prototype.hasOwnProperty.call(obj, '__proto__');

/** Throws NOT_SERIALIZABLE for an own `__proto__` property (it would come back as a prototype). */
export function rejectProtoKey(path: ValuePath): never {
  return reject(childPath(path, '__proto__'), 'is an own "__proto__" property', 'rename it');
}

function inspectPlainObject(obj: Record<string, unknown>, path: ValuePath, ins: Inspection): boolean {
  const keys = Object.keys(obj);
  if (ins.strict) checkPlainObjectKeys(obj, keys, path);
  let immutable = Object.isFrozen(obj);
  for (const key of keys) if (!inspectValue(obj[key], childPath(path, key), ins)) immutable = false;
  return immutable;
}
