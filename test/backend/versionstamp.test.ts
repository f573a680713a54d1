/** Packing versionstamped keys: the once-per-tuple fast path gives the bytes the general packing gives. */
import { unboundVersionstamp } from '../../src/backend/keys';
import { packVersionstampedTuple } from '../../src/backend/common/versionstamp';
import type { KeyTuple } from '../../src/backend/types';

const counter = (from: number) => () => from++;

test('a frozen tuple ending in its versionstamp packs, once, to the bytes of the general packing, each user version in place', () => {
  const shapes: KeyTuple[] = [
    ['srv', 'q', 'i', unboundVersionstamp()],
    [['tenant', 7], 'ü', Buffer.from([0, 1]), 1.5, unboundVersionstamp()],
    [unboundVersionstamp()],
  ];
  for (const shape of shapes) {
    const frozen = Object.freeze([...shape]) as KeyTuple;
    const fast = counter(0);
    const slow = counter(0);
    for (let i = 0; i < 3; i++) {
      const a = packVersionstampedTuple(frozen, fast);
      const b = packVersionstampedTuple([...shape], slow);
      expect(a.data.equals(b.data)).toBe(true);
      expect(a.stampPos).toBe(b.stampPos);
      expect(a.data.readUInt16BE(a.stampPos + 10)).toBe(i); // the user version, after the 10 stamp bytes
    }
  }
});

test('frozen tuples of other shapes take the general packing: a versionstamp not last, one with a user version', () => {
  const notLast = Object.freeze(['a', unboundVersionstamp(), 'b']) as KeyTuple;
  expect(packVersionstampedTuple(notLast, counter(3)).data).toEqual(
    packVersionstampedTuple(['a', unboundVersionstamp(), 'b'], counter(3)).data,
  );
  const coded = Object.freeze(['a', unboundVersionstamp(9)]) as KeyTuple;
  const packed = packVersionstampedTuple(coded, counter(3));
  expect(packed.data.readUInt16BE(packed.stampPos + 10)).toBe(9);
});

test('the fast path refuses a 65,537th user version as the general one does (BAD_KEY)', () => {
  const frozen = Object.freeze(['q', unboundVersionstamp()]) as KeyTuple;
  expect(() => packVersionstampedTuple(frozen, () => 65_536)).toThrow(
    expect.objectContaining({ code: 'BAD_KEY' }),
  );
  expect(() => packVersionstampedTuple(['q', unboundVersionstamp()], () => 65_536)).toThrow(
    expect.objectContaining({ code: 'BAD_KEY' }),
  );
});
