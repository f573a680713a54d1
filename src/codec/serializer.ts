import { addExtension, Encoder } from 'cbor-x';
import { SerializationError } from '../errors';
import { asNotSerializable, inspectValue, newInspection, protoInfo, rootPath } from './serializable';

/** Turns a value into bytes and back. Pluggable per server (the `serializer` option). */
export interface Serializer {
  encode(value: unknown): Buffer;
  decode(bytes: Buffer): unknown;
}

/**
 * A serializer whose checks the state codec can run itself while it walks the state (so each part is
 * walked once and errors name the path inside the whole state).
 */
export interface CheckedSerializer extends Serializer {
  /** Encodes a value that has already passed `inspectValue`; `normalize` as that walk reported. */
  encodeChecked(value: unknown, normalize: boolean): Buffer;
}

export const isCheckedSerializer = (s: Serializer): s is CheckedSerializer =>
  typeof (s as Partial<CheckedSerializer>).encodeChecked === 'function';

/**
 * cbor-x writes -0 as the integer 0. Before encoding, each -0 is swapped for one of these, written
 * as a private tag that decodes back to -0. (cbor-x extensions are process-wide; this class and tag
 * are ours alone, so other cbor-x users are unaffected.)
 */
class NegativeZero {}
/** "dgn0" — an unassigned tag number. */
const NEGATIVE_ZERO_TAG = 0x64676e30;
addExtension({
  Class: NegativeZero,
  tag: NEGATIVE_ZERO_TAG,
  encode: (_v: NegativeZero, encode: (v: unknown) => Uint8Array) => encode(0),
  decode: () => -0,
});

/** This realm's typed-array constructors, to copy another realm's typed arrays into. */
const LOCAL_TYPED_ARRAYS: Readonly<
  Record<string, new (source: ArrayLike<number> & ArrayLike<bigint>) => object>
> = Object.fromEntries(
  [
    Uint8Array,
    Uint8ClampedArray,
    Int8Array,
    Uint16Array,
    Int16Array,
    Uint32Array,
    Int32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
  ].map((C) => [C.name, C as unknown as new (source: ArrayLike<number> & ArrayLike<bigint>) => object]),
);

/**
 * A copy of `value` that cbor-x encodes faithfully: each -0 replaced by a marker, and built-ins of
 * another realm (which cbor-x would not recognise: a foreign Date would become `{}`) by this realm's.
 * Shared references stay shared.
 */
function normalized(value: unknown, copies = new Map<object, unknown>()): unknown {
  if (typeof value === 'number') return value === 0 && 1 / value < 0 ? new NegativeZero() : value;
  if (typeof value !== 'object' || value === null) return value;
  const done = copies.get(value);
  if (done !== undefined) return done;
  const info = protoInfo(Object.getPrototypeOf(value));
  switch (info?.kind) {
    case 'array': {
      const src = value as unknown[];
      const out = new Array<unknown>(src.length);
      copies.set(value, out);
      for (let i = 0; i < src.length; i++) out[i] = normalized(src[i], copies);
      return out;
    }
    case 'object': {
      const src = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      copies.set(value, out);
      for (const k of Object.keys(src)) out[k] = normalized(src[k], copies);
      return out;
    }
    case 'map': {
      const out = new Map<unknown, unknown>();
      copies.set(value, out);
      // Map keys are normalised to +0 by Map itself, so only values can hold -0.
      for (const [k, v] of value as Map<unknown, unknown>)
        out.set(normalized(k, copies), normalized(v, copies));
      return out;
    }
    case 'set': {
      const out = new Set<unknown>();
      copies.set(value, out);
      for (const v of value as Set<unknown>) out.add(normalized(v, copies));
      return out;
    }
    case 'date':
      if (info.local) return value;
      copies.set(value, new Date((value as Date).getTime()));
      return copies.get(value);
    case 'leaf': {
      if (info.local) return value;
      const name = (Object.getPrototypeOf(value) as { constructor: { name: string } }).constructor.name;
      const out =
        name === 'RegExp'
          ? new RegExp((value as RegExp).source, (value as RegExp).flags)
          : new LOCAL_TYPED_ARRAYS[name](value as ArrayLike<number> & ArrayLike<bigint>);
      copies.set(value, out);
      return out;
    }
    default:
      return value; // not ours to judge (a custom serializer's value)
  }
}

/**
 * cbor-x configured so bytes depend only on the value (and cbor-x's version), never on the Node
 * version or on earlier calls:
 * - `useRecords: false`, no `structures`, `sequential: false`, `bundleStrings: false`, `pack: false`:
 *   no record/structure/packing extensions whose meaning lives in encoder memory;
 * - `useTag259ForMaps` keeps `Map` distinct from plain objects; `tagUint8Array` keeps `Uint8Array`
 *   distinct from `Buffer`; BigInt always uses the 64-bit or bignum forms, so it never comes back as
 *   a number (and `int64AsNumber: false` keeps it a bigint);
 * - `structuredClone` keeps shared and cyclic references (tags 28/29);
 * - `copyBuffers` so decoded Buffers do not pin or alias the bytes they were read from.
 */
const options: ConstructorParameters<typeof Encoder>[0] & {
  useTag259ForMaps: boolean;
  int64AsNumber: boolean;
} = {
  useRecords: false,
  structuredClone: true,
  mapsAsObjects: true,
  useTag259ForMaps: true,
  tagUint8Array: true,
  sequential: false,
  bundleStrings: false,
  pack: false,
  useFloat32: 0,
  largeBigIntToFloat: false,
  int64AsNumber: false,
  copyBuffers: true,
};
const cbor = new Encoder(options);

function encodeChecked(value: unknown, normalize: boolean): Buffer {
  return cbor.encode(normalize ? normalized(value) : value);
}

/** The default serializer: CBOR via cbor-x, rejecting what it could not bring back as it was. */
export const cborSerializer: CheckedSerializer = Object.freeze({
  encode(value: unknown): Buffer {
    const ins = newInspection();
    const path = rootPath('value');
    inspectValue(value, path, ins);
    try {
      return encodeChecked(value, ins.normalize);
    } catch (err) {
      throw asNotSerializable(err, path);
    }
  },
  encodeChecked,
  decode(bytes: Buffer): unknown {
    try {
      return cbor.decode(bytes);
    } catch (err) {
      throw new SerializationError(
        'NOT_SERIALIZABLE',
        `stored bytes are not a valid CBOR value (${(err as Error).message}); were they written with another serializer?`,
        { cause: err },
      );
    }
  },
});
