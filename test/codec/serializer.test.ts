import fc from 'fast-check';
import * as vm from 'vm';
import { cborSerializer } from '../../src/codec/serializer';
import { equateInvalidDates, storable } from './arbitraries';

equateInvalidDates(); // a decoded invalid Date is another invalid Date, not a different value

const rt = (v: unknown) => cborSerializer.decode(cborSerializer.encode(v));

describe('cborSerializer round trips', () => {
  test('random nested values come back equal, with the same types', () => {
    fc.assert(
      fc.property(storable, (v) => {
        expect(rt(v)).toStrictEqual(v);
      }),
      { numRuns: 1000 },
    );
  });

  test('the awkward primitives', () => {
    expect(Object.is(rt(-0), -0)).toBe(true);
    expect(Object.is(rt({ a: [-0] }) && (rt({ a: [-0] }) as { a: number[] }).a[0], -0)).toBe(true);
    expect(Number.isNaN(rt(NaN))).toBe(true);
    expect(rt(undefined)).toBeUndefined();
    expect(rt({ u: undefined })).toStrictEqual({ u: undefined });
    expect(rt(5n)).toBe(5n); // a small BigInt stays a BigInt
    expect(rt(-(2n ** 100n))).toBe(-(2n ** 100n));
    expect(rt(2 ** 60)).toBe(2 ** 60); // a big number stays a number
    const bad = rt(new Date(NaN));
    expect(bad).toBeInstanceOf(Date);
    expect(Number.isNaN((bad as Date).getTime())).toBe(true);
  });

  test('Map stays distinct from object, Uint8Array from Buffer', () => {
    const m = rt(
      new Map<unknown, unknown>([
        ['a', 1],
        [{ k: 1 }, 2],
        [3, 'x'],
      ]),
    );
    expect(m).toBeInstanceOf(Map);
    expect(rt({ a: 1 })).not.toBeInstanceOf(Map);
    const u = rt(new Uint8Array([1, 2])) as Uint8Array;
    expect(u.constructor).toBe(Uint8Array);
    expect(Buffer.isBuffer(rt(Buffer.from([1])))).toBe(true);
    expect((rt(new Set([1, 'a'])) as Set<unknown>).has('a')).toBe(true);
    expect(rt(/a+b/gi)).toStrictEqual(/a+b/gi);
  });

  test('shared and cyclic references survive', () => {
    const shared = { x: 1 };
    const v: Record<string, unknown> = { a: shared, b: [shared], m: new Map([['s', shared]]) };
    v.self = v;
    const r = rt(v) as typeof v & { a: object; b: object[]; m: Map<string, object>; self: unknown };
    expect(r.a).toBe(r.b[0]);
    expect(r.m.get('s')).toBe(r.a);
    expect(r.self).toBe(r);
  });

  test("another realm's built-ins come back as this realm's, not as empty objects", () => {
    const foreign = vm.runInNewContext(
      '({ d: new Date(5), a: [1, -0], m: new Map([[1, new Set([2])]]), u: new Uint16Array([7]), r: /x/g, o: {} })',
    ) as Record<string, unknown>;
    expect(foreign.d).not.toBeInstanceOf(Date); // really foreign
    expect(rt(foreign)).toStrictEqual({
      d: new Date(5),
      a: [1, -0],
      m: new Map([[1, new Set([2])]]),
      u: new Uint16Array([7]),
      r: /x/g,
      o: {},
    });
    expect(() => cborSerializer.encode(vm.runInNewContext('new (class Foo {})()'))).toThrow(
      /instance of Foo/,
    );
  });

  test('decoded buffers do not alias the input bytes', () => {
    const bytes = cborSerializer.encode({ b: Buffer.from([1, 2, 3]) });
    const out = cborSerializer.decode(bytes) as { b: Buffer };
    bytes.fill(0);
    expect([...out.b]).toEqual([1, 2, 3]);
  });

  test('bytes depend only on the value (pinned encodings)', () => {
    // If these change, stored states written by another version would no longer compare equal.
    const hex = (v: unknown) => cborSerializer.encode(v).toString('hex');
    expect(hex({ a: 1, b: 'x' })).toBe('b9000261610161626178');
    expect(hex(new Map([['a', 1]]))).toBe('d90103a1616101');
    expect(hex(new Set([1]))).toBe('d901028101');
    expect(hex(5n)).toBe('1b0000000000000005');
    expect(hex(new Date(1_234_567))).toBe('c1fb40934a449ba5e354');
    expect(hex(new Uint8Array([1]))).toBe('d8404101');
    expect(hex(undefined)).toBe('f7');
    expect(hex(NaN)).toBe('fb7ff8000000000000');
    expect(hex(-0)).toBe('da64676e3000');
    // The same value encodes the same however many encodings came before.
    const first = hex({ deep: [1, { x: new Map([[1, 2]]) }] });
    for (let i = 0; i < 100; i++) cborSerializer.encode({ other: i, s: 'x'.repeat(i) });
    expect(hex({ deep: [1, { x: new Map([[1, 2]]) }] })).toBe(first);
  });
});

describe('NOT_SERIALIZABLE', () => {
  const fails = (v: unknown, message: RegExp) =>
    expect(() => cborSerializer.encode(v)).toThrow(
      expect.objectContaining({ code: 'NOT_SERIALIZABLE', message: expect.stringMatching(message) }),
    );
  class Account {
    constructor(public n = 1) {}
  }
  test('functions, symbols and class instances are rejected with their path', () => {
    fails(
      { accounts: [1, 2, 3, { onChange() {} }] },
      /^value\.accounts\[3\]\.onChange cannot be stored: it is a function/,
    );
    fails({ s: Symbol('x') }, /^value\.s .*symbol/);
    fails({ a: new Account() }, /^value\.a .*instance of Account/);
    fails([new Error('x')], /^value\[0\] .*instance of Error/);
    fails(new Map([['k', () => 1]]), /^value\.get\("k"\) .*function/);
    fails(new Map([[new Account(), 1]]), /^value\.<map key #0> .*Account/);
    fails(new Set([1, Symbol('y')]), /^value\.<set item #1> .*symbol/);
    fails({ 'a b': { c: () => 0 } }, /^value\["a b"\]\.c /);
    fails({ w: new WeakMap() }, /instance of WeakMap/);
    fails({ p: Promise.resolve() }, /instance of Promise/);
    fails({ n: Object(1) }, /instance of Number/);
    fails({ m: new (class extends Map {})() }, /instance of /);
    fails({ ab: new ArrayBuffer(2) }, /instance of ArrayBuffer/);
  });
  test('values that would come back changed are rejected', () => {
    fails(Object.create(null), /null prototype/);
    // eslint-disable-next-line no-sparse-arrays
    fails([1, , 3], /^value\[1\] .*hole/);
    fails({ [Symbol('k')]: 1 }, /symbol-keyed/);
    fails(JSON.parse('{"__proto__": 1}'), /__proto__/);
    fails({ d: new Date(4483361189679688) }, /^value\.d .*Date/);
  });
});
