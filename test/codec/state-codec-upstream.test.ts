import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import type { Tenant } from '../../src/backend/types';
import { clearState, readState, writeState, type StateSnapshot } from '../../src/codec';

/**
 * The cases of upstream test/dgen_mod_state_codec_test.exs, through the memory backend. Erlang's
 * atom-keyed maps are plain objects here, maps with other keys are `Map`s, component lists are
 * arrays of objects with a string `id`, and tuples are arrays.
 */
let backend: MemoryBackend;
let tenant: Tenant;
const KEY = ['test', 'codec', 's'];

beforeEach(async () => {
  backend = new MemoryBackend();
  tenant = await backend.openTenant(['t']);
});
afterEach(() => backend.close());

/** set/4: writes `next` given the snapshot of what is stored (undefined: from scratch). */
const set = (old: StateSnapshot | undefined, next: unknown) =>
  tenant.transact((tx) => writeState(tx, KEY, old, next)).then((r) => r.snapshot);
const get = () => tenant.read((tx) => readState(tx, KEY)).then((r) => r?.state);
const roundTrip = async (state: unknown) => {
  await set(undefined, state);
  expect(await get()).toStrictEqual(state);
};
const diff = async (old: unknown, next: unknown) => {
  const snap = await set(undefined, old);
  await set(snap, next);
  expect(await get()).toStrictEqual(next);
};

describe('term encoding', () => {
  test('an integer', () => roundTrip(42));
  test('a string', () => roundTrip('hello world'));
  test('a tuple', () => roundTrip(['ok', [1, 2, 3]]));
  test('a map with non-string keys', () =>
    roundTrip(
      new Map<unknown, unknown>([
        ['binary_key', 1],
        [42, 'val'],
      ]),
    ));
  test('a list without id keys', () => roundTrip([{ name: 'a' }, { name: 'b' }]));
  test('a large binary that needs chunking (250 KB → 3 chunks)', async () => {
    const large = Buffer.from(Array.from({ length: 250_000 }, (_, i) => (i * 7919) % 256));
    await roundTrip(large);
    const pairs = await tenant.read((tx) => tx.getRange(Buffer.from([0x00]), Buffer.from([0xff])));
    expect(pairs.filter((p) => p.value.length > 1000)).toHaveLength(3);
  });
});

describe('object encoding', () => {
  test('an empty object', () => roundTrip({}));
  test('a simple object', () => roundTrip({ count: 5, name: 'alice', active: true }));
  test('nested objects', () => roundTrip({ user: { name: 'bob', age: 30 }, settings: { theme: 'dark' } }));
  test('an object with a value that needs chunking', () =>
    roundTrip({ data: Buffer.alloc(250_000, 7), label: 'test' }));
});

describe('id-list encoding', () => {
  test('an empty list', () => roundTrip([]));
  test('a single item', () => roundTrip([{ id: 'a', value: 1 }]));
  test('keeps list order', () =>
    roundTrip([
      { id: 'z', value: 3 },
      { id: 'a', value: 1 },
      { id: 'm', value: 2 },
    ]));
  test('items with many fields', () =>
    roundTrip([
      { id: 'header', type: 'text', content: 'Hello', visible: true },
      { id: 'footer', type: 'text', content: 'Bye', visible: false },
    ]));
});

describe('nested encoding', () => {
  test('an object holding an id-list', () =>
    roundTrip({
      title: 'My Page',
      components: [
        { id: 'header', text: 'Hello' },
        { id: 'footer', text: 'Bye' },
      ],
    }));
  test('an object holding several id-lists', () =>
    roundTrip({
      widgets: [
        { id: 'w1', label: 'Widget 1' },
        { id: 'w2', label: 'Widget 2' },
      ],
      panels: [{ id: 'p1', title: 'Panel 1' }],
      count: 3,
    }));
  test('three levels: object → list → object with a nested object', () =>
    roundTrip({
      components: [
        { id: 'c1', config: { color: 'red', size: 10 } },
        { id: 'c2', config: { color: 'blue', size: 20 } },
      ],
    }));
});

describe('clear', () => {
  test('clears all state', async () => {
    await set(undefined, { a: 1, b: 2 });
    expect(await get()).toBeDefined();
    await tenant.transact((tx) => clearState(tx, KEY));
    expect(await tenant.read((tx) => readState(tx, KEY))).toBeUndefined();
  });
  test('reading an empty key gives nothing', async () => {
    expect(await tenant.read((tx) => readState(tx, KEY))).toBeUndefined();
  });
});

describe('overwrite from scratch', () => {
  test('with a different type clears the old data', async () => {
    await set(undefined, { a: 1, b: 2 });
    expect(await get()).toStrictEqual({ a: 1, b: 2 });
    await set(undefined, 42);
    expect(await get()).toBe(42);
  });
  test('an object with a list', async () => {
    await set(undefined, { x: 1 });
    await set(undefined, [{ id: 'a', v: 1 }]);
    expect(await get()).toStrictEqual([{ id: 'a', v: 1 }]);
  });
});

describe('diff objects', () => {
  test('no-op when identical', () => diff({ a: 1, b: 2 }, { a: 1, b: 2 }));
  test('one changed key', () => diff({ a: 1, b: 2, c: 3 }, { a: 1, b: 99, c: 3 }));
  test('a new key', () => diff({ a: 1 }, { a: 1, b: 2 }));
  test('a removed key', () => diff({ a: 1, b: 2 }, { a: 1 }));
  test('add, remove and update at once', () => diff({ a: 1, b: 2, c: 3 }, { a: 10, c: 3, d: 4 }));
  test('a nested change', () =>
    diff(
      { user: { name: 'alice', age: 30 }, status: 'active' },
      { user: { name: 'alice', age: 31 }, status: 'active' },
    ));
  test('a type change rewrites', () => diff({ a: 1 }, 42));
});

describe('diff id-lists', () => {
  const items = (...ps: [string, number][]) => ps.map(([id, v]) => ({ id, v }));
  test('no-op when identical', () => diff(items(['a', 1], ['b', 2]), items(['a', 1], ['b', 2])));
  test("an item's field", () => diff(items(['a', 1], ['b', 2]), items(['a', 99], ['b', 2])));
  test('a removed item', () => diff(items(['a', 1], ['b', 2], ['c', 3]), items(['a', 1], ['c', 3])));
  test('an item added at the end', () => diff(items(['a', 1]), items(['a', 1], ['b', 2])));
  test('an item added at the start', () => diff(items(['b', 2]), items(['a', 1], ['b', 2])));
  test('an item added in the middle', () =>
    diff(items(['a', 1], ['c', 3]), items(['a', 1], ['b', 2], ['c', 3])));
  test('order survives several diffs', async () => {
    const v1 = items(['a', 1], ['b', 2], ['c', 3]);
    let snap = await set(undefined, v1);
    const v2 = items(['a', 1], ['c', 3], ['d', 4]); // remove b, add d at the end
    snap = await set(snap, v2);
    expect(await get()).toStrictEqual(v2);
    const v3 = items(['a', 1], ['e', 5], ['c', 3], ['d', 4]); // insert e between a and c
    await set(snap, v3);
    expect(await get()).toStrictEqual(v3);
  });
});

describe('diff nested', () => {
  test('a list inside an object', () =>
    diff(
      {
        title: 'Page',
        items: [
          { id: 'x', val: 1 },
          { id: 'y', val: 2 },
        ],
      },
      {
        title: 'Page',
        items: [
          { id: 'x', val: 1 },
          { id: 'y', val: 99 },
          { id: 'z', val: 3 },
        ],
      },
    ));
  test('an object inside list items', () =>
    diff(
      [
        { id: 'c1', config: { color: 'red', size: 10 } },
        { id: 'c2', config: { color: 'blue', size: 20 } },
      ],
      [
        { id: 'c1', config: { color: 'green', size: 10 } },
        { id: 'c2', config: { color: 'blue', size: 20 } },
      ],
    ));
});

describe('in one transaction', () => {
  test('write then read', async () => {
    const state = await tenant.transact(async (tx) => {
      writeState(tx, KEY, undefined, { a: 1 });
      return (await readState(tx, KEY))?.state;
    });
    expect(state).toStrictEqual({ a: 1 });
  });
});
