/**
 * SortedStore (the memory backend's ordered map, kept as a list of sorted blocks) against a naive
 * sorted-array model. Small block sizes make a handful of keys span many blocks, so the properties
 * exercise splits, merges, emptied blocks and ranges that cross block boundaries.
 */
import fc from 'fast-check';
import { SortedStore, UndoLog } from '../../src/backend/memory/sorted-store';
import type { KeyValue } from '../../src/backend/types';

/** The naive model: entries in one array, sorted by key, every operation a linear scan. */
class Model {
  entries: Array<{ key: Buffer; value: Buffer }> = [];

  get(key: Buffer): Buffer | undefined {
    return this.entries.find((e) => e.key.equals(key))?.value;
  }
  range(start: Buffer, end: Buffer, limit: number, reverse: boolean): KeyValue[] {
    const inside = this.entries.filter(
      (e) => Buffer.compare(e.key, start) >= 0 && Buffer.compare(e.key, end) < 0,
    );
    if (reverse) inside.reverse();
    return limit > 0 ? inside.slice(0, limit) : inside;
  }
  set(key: Buffer, value: Buffer): void {
    this.delete(key);
    this.entries.push({ key: Buffer.from(key), value: Buffer.from(value) });
    this.entries.sort((a, b) => Buffer.compare(a.key, b.key));
  }
  delete(key: Buffer): void {
    this.entries = this.entries.filter((e) => !e.key.equals(key));
  }
  deleteRange(start: Buffer, end: Buffer): void {
    this.entries = this.entries.filter(
      (e) => Buffer.compare(e.key, start) < 0 || Buffer.compare(e.key, end) >= 0,
    );
  }
}

const show = (rows: KeyValue[]) => rows.map((r) => `${r.key.toString('hex')}=${r.value.toString('hex')}`);
const ALL = [Buffer.alloc(0), Buffer.alloc(8, 0xff)] as const;

/** The store's blocks (private): none empty, none over the limit, keys strictly increasing. */
function checkBlocks(store: SortedStore, maxBlock: number): void {
  const { blocks } = store as unknown as { blocks: Array<{ keys: Buffer[]; values: Buffer[] }> };
  let previous: Buffer | undefined;
  for (const block of blocks) {
    expect(block.keys.length).toBeGreaterThan(0);
    expect(block.keys.length).toBeLessThanOrEqual(maxBlock);
    expect(block.values.length).toBe(block.keys.length);
    for (const key of block.keys) {
      if (previous !== undefined) expect(Buffer.compare(previous, key)).toBeLessThan(0);
      previous = key;
    }
  }
}

// Keys from a 3-letter alphabet, up to 3 bytes long (the empty key included): few enough that
// operations collide, many enough (40) to fill several small blocks.
const key = fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }).map((bytes) => Buffer.from(bytes));
const value = fc.integer({ min: 0, max: 255 }).map((n) => Buffer.from([n]));

type Op =
  | { op: 'set'; key: Buffer; value: Buffer }
  | { op: 'delete'; key: Buffer }
  | { op: 'deleteRange'; start: Buffer; end: Buffer }
  | { op: 'range'; start: Buffer; end: Buffer; limit: number; reverse: boolean }
  | { op: 'get'; key: Buffer };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), key, value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('deleteRange' as const), start: key, end: key }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('range' as const),
      start: key,
      end: key,
      limit: fc.integer({ min: -1, max: 6 }),
      reverse: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('get' as const), key }) },
);

const maxBlockArb = fc.constantFrom(1, 2, 3, 4, 5, 8);

function apply(store: SortedStore | UndoLog, model: Model | undefined, o: Op): void {
  switch (o.op) {
    case 'set':
      store.set(o.key, o.value);
      model?.set(o.key, o.value);
      break;
    case 'delete':
      store.delete(o.key);
      model?.delete(o.key);
      break;
    case 'deleteRange':
      store.deleteRange(o.start, o.end);
      model?.deleteRange(o.start, o.end);
      break;
    case 'range':
      if (model)
        expect(show(store.range(o.start, o.end, o.limit, o.reverse))).toEqual(
          show(model.range(o.start, o.end, o.limit, o.reverse)),
        );
      break;
    case 'get':
      if (model) expect(store.get(o.key)?.toString('hex')).toBe(model.get(o.key)?.toString('hex'));
      break;
  }
}

describe('SortedStore', () => {
  test('behaves like a sorted array under any sequence of operations, at any block size', () => {
    fc.assert(
      fc.property(maxBlockArb, fc.array(opArb, { maxLength: 120 }), (maxBlock, ops) => {
        const store = new SortedStore(maxBlock);
        const model = new Model();
        for (const o of ops) {
          apply(store, model, o);
          checkBlocks(store, maxBlock);
        }
        expect(show(store.range(...ALL, 0, false))).toEqual(show(model.range(...ALL, 0, false)));
        expect(show(store.range(...ALL, 0, true))).toEqual(show(model.range(...ALL, 0, true)));
      }),
      { numRuns: 300 },
    );
  });

  test('UndoLog.rollback restores the store exactly, whatever the writes did to its blocks', () => {
    fc.assert(
      fc.property(
        maxBlockArb,
        fc.array(opArb, { maxLength: 60 }),
        fc.array(opArb, { maxLength: 60 }),
        (maxBlock, before, during) => {
          const store = new SortedStore(maxBlock);
          for (const o of before) apply(store, undefined, o);
          const snapshot = show(store.range(...ALL, 0, false));
          const log = new UndoLog(store);
          for (const o of during) apply(log, undefined, o);
          log.rollback();
          expect(show(store.range(...ALL, 0, false))).toEqual(snapshot);
          checkBlocks(store, maxBlock);
        },
      ),
      { numRuns: 200 },
    );
  });

  describe('with the default block size and many keys', () => {
    const N = 5000;
    const k = (i: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(i);
      return b;
    };
    const v = (i: number) => Buffer.from(`v${i}`);
    const ids = (from: number, to: number, step = 1) => {
      const out: number[] = [];
      for (let i = from; i < to; i += step) out.push(i);
      return out;
    };
    const keysOf = (rows: KeyValue[]) => rows.map((r) => r.key.readUInt32BE());

    let store: SortedStore;
    beforeEach(() => {
      store = new SortedStore();
      // Even keys only, in a scrambled order (7919 is prime, so i * 7919 mod N visits every i).
      for (let j = 0; j < N; j++) {
        const i = ((j * 7919) % N) * 2;
        store.set(k(i), v(i));
      }
      checkBlocks(store, 512);
    });

    test('get and ranges across block boundaries, forward and reverse, with limits', () => {
      expect(store.get(k(2468))?.toString()).toBe('v2468');
      expect(store.get(k(2469))).toBeUndefined();
      expect(keysOf(store.range(k(0), k(2 * N), 0, false))).toEqual(ids(0, 2 * N, 2));
      expect(keysOf(store.range(k(0), k(2 * N), 0, true))).toEqual(ids(0, 2 * N, 2).reverse());
      // Bounds that are absent keys, and an end that is present (exclusive).
      expect(keysOf(store.range(k(999), k(3000), 0, false))).toEqual(ids(1000, 3000, 2));
      expect(keysOf(store.range(k(999), k(3000), 700, true))).toEqual(
        ids(1000, 3000, 2).reverse().slice(0, 700),
      );
      expect(keysOf(store.range(k(999), k(3000), 700, false))).toEqual(ids(1000, 3000, 2).slice(0, 700));
      expect(store.range(k(3000), k(999), 0, false)).toEqual([]);
      expect(store.range(k(3000), k(999), 0, true)).toEqual([]);
      expect(store.range(k(3000), k(3000), 0, false)).toEqual([]);
      expect(keysOf(store.range(k(2 * N - 2), k(2 * N + 5), 5, true))).toEqual([2 * N - 2]);
    });

    test('deleteRange spanning blocks, then deleting everything, then inserting again', () => {
      store.deleteRange(k(1001), k(8001));
      checkBlocks(store, 512);
      const left = [...ids(0, 1001, 2), ...ids(8002, 2 * N, 2)];
      expect(keysOf(store.range(k(0), k(2 * N), 0, false))).toEqual(left);
      expect(keysOf(store.range(k(900), k(8100), 60, true))).toEqual(
        left
          .filter((i) => i >= 900 && i < 8100)
          .reverse()
          .slice(0, 60),
      );

      for (const i of left.filter((i) => i % 4 === 0)) store.delete(k(i));
      checkBlocks(store, 512);
      expect(keysOf(store.range(k(0), k(2 * N), 0, false))).toEqual(left.filter((i) => i % 4));

      store.deleteRange(k(0), k(2 * N));
      expect(store.range(k(0), k(2 * N), 0, false)).toEqual([]);
      expect(store.get(k(2))).toBeUndefined();
      expect((store as unknown as { blocks: unknown[] }).blocks).toHaveLength(0);
      store.delete(k(2));
      store.deleteRange(k(0), k(10));

      for (const i of ids(0, N).reverse()) store.set(k(i), v(i));
      checkBlocks(store, 512);
      expect(keysOf(store.range(k(0), k(N), 0, false))).toEqual(ids(0, N));
      expect(store.get(k(17))?.toString()).toBe('v17');
    });

    test('deleting most keys one by one merges the shrunken blocks', () => {
      for (const i of ids(0, 2 * N, 2)) if (i % 100 !== 0) store.delete(k(i));
      checkBlocks(store, 512);
      const { blocks } = store as unknown as { blocks: unknown[] };
      expect(blocks).toHaveLength(1);
      expect(keysOf(store.range(k(0), k(2 * N), 0, false))).toEqual(ids(0, 2 * N, 100));
    });
  });

  test('set copies the key and the value', () => {
    const store = new SortedStore(2);
    const key = Buffer.from('ab');
    const value = Buffer.from('xy');
    store.set(key, value);
    key[0] = 0x7a;
    value[0] = 0x7a;
    expect(store.get(Buffer.from('ab'))?.toString()).toBe('xy');
    expect(store.get(Buffer.from('zb'))).toBeUndefined();
  });
});
