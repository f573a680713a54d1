import { addExtension, Encoder } from 'cbor-x';
import { SerializationError } from '../errors';
import { inspectValue, newInspection, rootPath } from './serializable';

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
  /** Encodes a value that has already passed `inspectValue`; `negativeZero` as that walk reported. */
  encodeChecked(value: unknown, negativeZero: boolean): Buffer;
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

/** A copy of `value` with every -0 number replaced by a marker; keeps shared references shared. */
function markNegativeZeros(value: unknown, copies = new Map<object, unknown>()): unknown {
  if (typeof value === 'number') return value === 0 && 1 / value < 0 ? new NegativeZero() : value;
  if (typeof value !== 'object' || value === null) return value;
  const done = copies.get(value);
  if (done !== undefined) return done;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    const src = value as unknown[];
    const out = new Array<unknown>(src.length);
    copies.set(value, out);
    for (let i = 0; i < src.length; i++) out[i] = markNegativeZeros(src[i], copies);
    return out;
  }
  if (proto === Object.prototype) {
    const src = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    copies.set(value, out);
    for (const k of Object.keys(src)) out[k] = markNegativeZeros(src[k], copies);
    return out;
  }
  if (proto === Map.prototype) {
    const out = new Map<unknown, unknown>();
    copies.set(value, out);
    // Map keys are normalised to +0 by Map itself, so only values can hold -0.
    for (const [k, v] of value as Map<unknown, unknown>)
      out.set(markNegativeZeros(k, copies), markNegativeZeros(v, copies));
    return out;
  }
  if (proto === Set.prototype) {
    const out = new Set<unknown>();
    copies.set(value, out);
    for (const v of value as Set<unknown>) out.add(markNegativeZeros(v, copies));
    return out;
  }
  return value; // Dates, typed arrays, RegExps cannot hold a -0 number
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

function encodeChecked(value: unknown, negativeZero: boolean): Buffer {
  return cbor.encode(negativeZero ? markNegativeZeros(value) : value);
}

/** The default serializer: CBOR via cbor-x, rejecting what it could not bring back as it was. */
export const cborSerializer: CheckedSerializer = Object.freeze({
  encode(value: unknown): Buffer {
    const ins = newInspection();
    inspectValue(value, rootPath('value'), ins);
    return encodeChecked(value, ins.negativeZero);
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
