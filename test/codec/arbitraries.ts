import fc from 'fast-check';
import { pack } from '../../src/backend/keys';
import type { TupleItem } from '../../src/backend/types';
import type { StateEntry, StateOp } from '../../src/codec';

/** Dates whose milliseconds survive CBOR's float seconds (all of ±142 000 years); rarely an invalid one. */
const exactDate = fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15) }).filter((d) => {
  const t = d.getTime();
  return Number.isNaN(t) || Math.round((t / 1000) * 1000) === t;
});

const isDate = (v: unknown): v is Date => Object.prototype.toString.call(v) === '[object Date]';

/**
 * An equality tester for `expect.addEqualityTesters`: two invalid Dates are equal. Jest compares
 * Dates by `+a === +b`, so an invalid Date (time NaN) equals no other Date object, not even the
 * invalid Date the codec faithfully brings back; `exactDate` makes one every few thousand values,
 * which made round-trip properties fail at random. Valid Dates are left to Jest.
 */
export function invalidDatesEqual(a: unknown, b: unknown): boolean | undefined {
  if (!isDate(a) || !isDate(b)) return undefined;
  return Number.isNaN(a.getTime()) && Number.isNaN(b.getTime()) ? true : undefined;
}

/** Registers `invalidDatesEqual` for the calling test file (`toEqual`, `toStrictEqual`, inside Maps and Sets too). */
export function equateInvalidDates(): void {
  // Jest has had expect.addEqualityTesters since 29.4; @types/jest does not declare it
  (expect as unknown as { addEqualityTesters(testers: unknown[]): void }).addEqualityTesters([
    invalidDatesEqual,
  ]);
}

/** Every kind of non-container value the serializer must bring back exactly. */
export const leafValue = fc.oneof(
  fc.string(),
  fc.double(), // includes NaN, ±Infinity, -0
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  exactDate,
  fc.uint8Array({ maxLength: 20 }),
  fc.uint8Array({ maxLength: 20 }).map((u) => Buffer.from(u)),
  fc.float64Array({ maxLength: 5 }),
);

const objectKey = fc.string().filter((k) => k !== '__proto__');

/** Nested values of every supported kind (what cborSerializer must round-trip). */
export const storable = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    leafValue,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(objectKey, tie('value'), { maxKeys: 5, noNullPrototype: true }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 }).map((es) => new Map(es)),
    fc.array(tie('value'), { maxLength: 4 }).map((vs) => new Set(vs)),
  ),
})).value;

// Small name spaces so that two random states share properties and ids (and so diffs have work).
const propName = fc.oneof(fc.constantFrom('a', 'b', 'c', 'id', 'x y', '', '0', '10', 'ü'), objectKey);
const itemId = fc.constantFrom('i1', 'i2', 'i3', 'i4', 'i5', 'i6', '', 'long-id-'.repeat(3));

/** States exercising every encoding: objects (one key per property), id-lists, and values. */
export const stateValue = fc.letrec((tie) => ({
  state: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafValue,
    tie('object'),
    tie('idList'),
    fc.array(tie('state'), { maxLength: 4 }), // an array that is not an id-list: one value
    fc.array(fc.tuple(leafValue, tie('state')), { maxLength: 3 }).map((es) => new Map(es)),
  ),
  object: fc.dictionary(propName, tie('state'), { maxKeys: 6, noNullPrototype: true }),
  idList: fc
    .uniqueArray(
      fc.tuple(itemId, fc.dictionary(propName, tie('state'), { maxKeys: 3, noNullPrototype: true })),
      {
        selector: ([id]) => id,
        maxLength: 6,
      },
    )
    .map((items) => items.map(([id, rest]) => ({ ...rest, id }))),
})).state;

/**
 * Applies diff operations to a plain map of keys, as a backend would: lets tests check what a diff
 * leaves stored without a transaction. Returns the entries in key order.
 */
export class KeyMap {
  private readonly keys = new Map<string, StateEntry>();

  apply(ops: readonly StateOp[]): this {
    for (const op of ops) {
      const k = pack(op.path as TupleItem[]).toString('hex');
      if (op.type === 'set') this.keys.set(k, { path: op.path, value: Buffer.from(op.value) });
      else if (op.type === 'clear') this.keys.delete(k);
      else
        for (const key of [...this.keys.keys()])
          if (key.startsWith(k) && key.length > k.length) this.keys.delete(key);
    }
    return this;
  }

  get size(): number {
    return this.keys.size;
  }

  entries(): StateEntry[] {
    return [...this.keys.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  }
}

/** Counts of a diff's operations. */
export function opCounts(ops: readonly StateOp[]): { sets: number; clears: number; ranges: number } {
  return {
    sets: ops.filter((o) => o.type === 'set').length,
    clears: ops.filter((o) => o.type === 'clear').length,
    ranges: ops.filter((o) => o.type === 'clearRange').length,
  };
}
