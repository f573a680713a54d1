import fc from 'fast-check';
import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import { LIMITS, type Tenant } from '../../src/backend/types';
import { pack } from '../../src/backend/keys';
import {
  applyStateOps,
  CHUNK_BYTES,
  cborSerializer,
  decodeState,
  diffState,
  encodeState,
  readState,
  readVersion,
  StateStore,
  writeState,
  type CheckedSerializer,
  type Serializer,
  type StateOp,
  type StateSnapshot,
} from '../../src/codec';
import { deepFreeze } from '../../src/kernel/freeze';
import { equateInvalidDates, KeyMap, opCounts, stateValue } from './arbitraries';

equateInvalidDates(); // a decoded invalid Date is another invalid Date, not a different value

const P = ['srv', 's'];

/** Writes with the pure diff and reads back with the pure decoder. */
function pureRoundTrip(state: unknown): unknown {
  const { entries } = encodeState(state);
  return decodeState(entries)?.state;
}

describe('round trips (property-based)', () => {
  test('random nested states come back exactly (pure encode/decode)', () => {
    fc.assert(
      fc.property(stateValue, (s) => {
        expect(pureRoundTrip(s)).toStrictEqual(s);
      }),
      { numRuns: 500 },
    );
  });

  test('an invalid Date comes back as an invalid Date, also as a Map key (rare counterexamples of the properties)', () => {
    // Jest's own equality calls two invalid Dates different; the tester registered above does not
    const a = { '': new Map([[new Date(NaN), 0]]) };
    const keys = new KeyMap();
    let snap: StateSnapshot | undefined;
    for (const s of [a, new Date(0), 0, a, new Date(NaN)]) {
      const d = diffState(snap, s);
      keys.apply(d.ops);
      snap = d.snapshot;
      const read = decodeState(keys.entries());
      expect(read?.state).toStrictEqual(s);
      expect(diffState(snap, s).ops).toHaveLength(0);
      expect(diffState(read?.snapshot, s).ops).toHaveLength(0);
    }
    const back = pureRoundTrip(a) as typeof a;
    const [[key, value]] = [...back[''].entries()];
    expect(key).toBeInstanceOf(Date);
    expect(Number.isNaN(key.getTime())).toBe(true);
    expect(value).toBe(0);
    // and the tester only equates invalid Dates
    expect(new Date(NaN)).not.toStrictEqual(new Date(0));
    expect(new Date(5)).not.toStrictEqual(new Date(6));
    expect(new Date(NaN)).not.toStrictEqual(NaN);
  });

  test('diffing one random state into another leaves exactly the second stored', () => {
    fc.assert(
      fc.property(stateValue, stateValue, stateValue, (a, b, c) => {
        const keys = new KeyMap();
        let snap: StateSnapshot | undefined;
        for (const s of [a, b, c, a]) {
          const d = diffState(snap, s);
          keys.apply(d.ops);
          snap = d.snapshot;
          const read = decodeState(keys.entries());
          expect(read?.state).toStrictEqual(s);
          // what the diff remembers is what a reader would find: both lead to no further writes
          expect(diffState(snap, s).ops).toHaveLength(0);
          expect(diffState(read?.snapshot, s).ops).toHaveLength(0);
          expect(snap.keyCount).toBe(keys.size);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('through the memory backend, a reader in another "process" sees exactly what was written', async () => {
    const backend = new MemoryBackend();
    const tenant = await backend.openTenant(['pbt']);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(stateValue, { minLength: 1, maxLength: 4 }), async (states) => {
          const writer = new StateStore(P);
          let previous: unknown;
          let first = true;
          for (const s of states) {
            await tenant.transact((tx) => writer.write(tx, first ? undefined : previous, s));
            first = false;
            previous = s;
            const reader = new StateStore(P); // knows nothing: reads from scratch
            const got = await tenant.read((tx) => reader.read(tx));
            expect(got?.state).toStrictEqual(s);
          }
        }),
        { numRuns: 100 },
      );
    } finally {
      await backend.close();
    }
  });
});

describe('diff minimality', () => {
  const big = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, i]));
  const ops = (old: unknown, next: unknown) => diffState(encodeState(old).snapshot, next).ops;

  test('one changed property of 1,000 writes one key', () => {
    const s = big(1000);
    expect(opCounts(ops(s, { ...s, p500: -1 }))).toEqual({ sets: 1, clears: 0, ranges: 0 });
  });
  test('a change deep inside nested objects writes one key', () => {
    const s = { a: { b: { c: { d: 1, e: 2 } }, f: 3 }, g: 4 };
    expect(opCounts(ops(s, { ...s, a: { ...s.a, b: { c: { d: 9, e: 2 } } } }))).toEqual({
      sets: 1,
      clears: 0,
      ranges: 0,
    });
  });
  test('identical states write nothing (also built-ins from another realm, as structuredClone makes here)', () => {
    const s = { a: [{ id: 'x', v: new Map([[1, 2]]) }], b: new Date(5), c: [1, 2] };
    expect(ops(s, structuredClone(s))).toHaveLength(0);
    expect(ops(s, { a: [{ id: 'x', v: new Map([[1, 2]]) }], b: new Date(5), c: [1, 2] })).toHaveLength(0);
  });
  test('adding a property writes its key; adding an object writes its marker and properties', () => {
    expect(opCounts(ops({ a: 1 }, { a: 1, b: 2 }))).toEqual({ sets: 1, clears: 0, ranges: 0 });
    expect(opCounts(ops({ a: 1 }, { a: 1, b: { x: 1, y: 2 } }))).toEqual({ sets: 3, clears: 0, ranges: 0 });
  });
  test('removing a property clears its key; removing an object clears its range', () => {
    expect(opCounts(ops({ a: 1, b: 2 }, { a: 1 }))).toEqual({ sets: 0, clears: 1, ranges: 0 });
    const d = ops({ a: 1, b: { x: 1, y: { z: 2 } } }, { a: 1 });
    expect(opCounts(d)).toEqual({ sets: 0, clears: 0, ranges: 1 });
    expect(d[0]).toMatchObject({ type: 'clearRange', keys: 4 }); // b's marker, b.x, b.y's marker, b.y.z
  });
  test('changing an id-list item field writes one key', () => {
    const list = Array.from({ length: 100 }, (_, i) => ({ id: `i${i}`, v: i, name: `n${i}` }));
    const next = list.map((it) => (it.id === 'i42' ? { ...it, v: -1 } : it));
    expect(opCounts(ops({ list }, { list: next }))).toEqual({ sets: 1, clears: 0, ranges: 0 });
  });
  test('appending an item writes its position, marker and properties', () => {
    const list = [{ id: 'a', v: 1 }];
    expect(opCounts(ops(list, [...list, { id: 'b', v: 2 }]))).toEqual({ sets: 4, clears: 0, ranges: 0 });
  });
  test('removing an item clears its position and its range', () => {
    const list = [
      { id: 'a', v: 1 },
      { id: 'b', v: 2 },
    ];
    expect(opCounts(ops(list, [list[0]]))).toEqual({ sets: 0, clears: 1, ranges: 1 });
  });
  test("reordering rewrites only the moved items' position keys", () => {
    const list = Array.from({ length: 100 }, (_, i) => ({ id: `i${i}`, payload: 'x'.repeat(100) }));
    const last = list[99];
    // move the last item to the front: one position key
    const moved = ops(list, [last, ...list.slice(0, 99)]);
    expect(opCounts(moved)).toEqual({ sets: 1, clears: 0, ranges: 0 });
    expect(moved[0].path).toEqual(['l', 'i', 'i99']);
    // swap two neighbours: one position key
    const swapped = [...list];
    [swapped[10], swapped[11]] = [swapped[11], swapped[10]];
    expect(opCounts(ops(list, swapped))).toEqual({ sets: 1, clears: 0, ranges: 0 });
    // reverse: every item but one moves
    expect(opCounts(ops(list, [...list].reverse()))).toEqual({ sets: 99, clears: 0, ranges: 0 });
    // and the result reads back in the new order
    const keys = new KeyMap().apply(diffState(undefined, list).ops);
    const snap = encodeState(list).snapshot;
    keys.apply(diffState(snap, [...list].reverse()).ops);
    expect(decodeState(keys.entries())?.state).toStrictEqual([...list].reverse());
  });
  test('a kind change clears the old keys and writes the new ones', () => {
    expect(opCounts(ops({ a: { x: 1, y: 2 } }, { a: 7 }))).toEqual({ sets: 1, clears: 0, ranges: 1 });
    expect(opCounts(ops({ a: 7 }, { a: { x: 1 } }))).toEqual({ sets: 2, clears: 1, ranges: 0 });
    expect(opCounts(ops({ a: [{ id: 'q' }] }, { a: [1, 2] }))).toEqual({ sets: 1, clears: 0, ranges: 1 });
  });
  test('a value growing past a chunk writes the chunks; shrinking clears the extra ones', () => {
    const small = { blob: Buffer.alloc(10) };
    const large = { blob: Buffer.alloc(250_000, 1) };
    expect(opCounts(ops(small, large))).toEqual({ sets: 3, clears: 0, ranges: 0 });
    expect(opCounts(ops(large, small))).toEqual({ sets: 1, clears: 2, ranges: 0 });
  });
  test('a mutable part changed in place is still noticed', () => {
    const s = { a: { x: 1 }, m: new Map([['k', 1]]) };
    const snap = encodeState(s).snapshot;
    s.a.x = 2;
    s.m.set('k', 2);
    expect(opCounts(diffState(snap, s).ops)).toEqual({ sets: 2, clears: 0, ranges: 0 });
  });
  test('a deep-frozen unchanged part is skipped by identity', () => {
    const inner = deepFreeze({ deep: { list: [{ id: 'a', v: [1, 2, 3] }] } });
    const s1 = deepFreeze({ inner, n: 1 });
    let encoded = 0;
    const counting: CheckedSerializer = {
      ...cborSerializer,
      encodeChecked: (v, normalize) => {
        encoded++;
        return cborSerializer.encodeChecked(v, normalize);
      },
    };
    const snap = encodeState(s1, counting).snapshot;
    encoded = 0;
    const d = diffState(snap, deepFreeze({ inner, n: 2 }), counting);
    expect(opCounts(d.ops)).toEqual({ sets: 1, clears: 0, ranges: 0 });
    expect(encoded).toBe(1); // only the changed number was encoded
  });
  test('WriteStats count what reaches the backend, the version key included', async () => {
    const backend = new MemoryBackend();
    const tenant = await backend.openTenant(['stats']);
    const s = big(100);
    const first = await tenant.transact((tx) => writeState(tx, P, undefined, s));
    expect(first).toMatchObject({ keysWritten: 102, keysCleared: 0, rangesCleared: 1 }); // marker + 100 + version
    const second = await tenant.transact((tx) =>
      writeState(tx, P, first.snapshot, { ...s, p1: 'x', p2: undefined }),
    );
    expect(second).toMatchObject({ keysWritten: 3, keysCleared: 0, rangesCleared: 0 });
    const third = await tenant.transact((tx) => {
      const next: Record<string, unknown> = { ...s, p1: 'x', p2: undefined };
      delete next.p3;
      return writeState(tx, P, second.snapshot, next);
    });
    expect(third).toMatchObject({ keysWritten: 1, keysCleared: 1 });
    expect(third.bytesWritten).toBe(pack([...P, 'v']).length + 10);
    await backend.close();
  });
});

describe('the fast path for unchanged properties', () => {
  // A diff remembers, per object of 16 or more properties, its property names in order and the
  // values of its immutable parts (primitives, deep-frozen parts); the next diff skips a property
  // holding the very same value at the same place. `pad` makes objects wide enough for that.
  const PAD = Object.freeze(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, i])));
  const pad = <T extends object>(o: T): T => ({ ...PAD, ...o });
  const counting = () => {
    const c = { encoded: 0, serializer: undefined as unknown as CheckedSerializer };
    c.serializer = {
      ...cborSerializer,
      encodeChecked: (v, normalize) => {
        c.encoded++;
        return cborSerializer.encodeChecked(v, normalize);
      },
    };
    return c;
  };
  /** Diffs each state from the previous snapshot; checks what is stored and that nothing is left to write. */
  function chain(states: unknown[], serializer?: Serializer): Array<readonly StateOp[]> {
    const keys = new KeyMap();
    let snap: StateSnapshot | undefined;
    const all: Array<readonly StateOp[]> = [];
    for (const s of states) {
      const d = diffState(snap, s, serializer);
      keys.apply(d.ops);
      all.push(d.ops);
      snap = d.snapshot;
      expect(decodeState(keys.entries(), serializer)?.state).toStrictEqual(s);
      expect(diffState(snap, s, serializer).ops).toHaveLength(0);
      expect(snap.keyCount).toBe(keys.size);
    }
    return all;
  }

  test('one-property updates of a large deep-frozen state encode and write only that property, write after write', () => {
    const c = counting();
    let s = deepFreeze(
      Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`p${i}`, i % 2 ? { n: i } : `v${i}`])),
    );
    let snap = encodeState(s, c.serializer).snapshot;
    for (let run = 0; run < 5; run++) {
      c.encoded = 0;
      const next = deepFreeze({ ...s, [`p${run * 2 + 1}`]: { n: -run } }); // an object { n }: one key
      const d = diffState(snap, next, c.serializer);
      expect(opCounts(d.ops)).toEqual({ sets: 1, clears: 0, ranges: 0 });
      expect(c.encoded).toBe(1);
      snap = d.snapshot;
      s = next;
    }
  });
  test('the very same state again writes nothing and keeps the snapshot', () => {
    const s = deepFreeze({ a: 1, b: { c: [1, 2] } });
    const { snapshot } = encodeState(s);
    const d = diffState(snapshot, s);
    expect(d.ops).toHaveLength(0);
    expect(d.snapshot).toBe(snapshot);
  });
  test('a changed nested object under an unchanged name is found', () => {
    const s = deepFreeze({ a: { b: { c: 1, d: 2 }, e: 3 }, z: 0 });
    const ops = chain([s, deepFreeze({ ...s, a: { ...s.a, b: { ...s.a.b, c: 9 } } })]);
    expect(opCounts(ops[1])).toEqual({ sets: 1, clears: 0, ranges: 0 });
    expect(ops[1][0].path).toEqual(['m', 'a', 'm', 'b', 'm', 'c', 't', 0]);
  });
  test('a mutable part kept by identity and changed in place is still noticed, also under a frozen parent', () => {
    const a = pad({ x: 1 });
    const s1 = pad({ a, n: 1 });
    const s2 = Object.freeze(pad({ a, n: 2 })); // frozen, but not deeply: `a` is still mutable
    const keys = new KeyMap();
    let d = diffState(undefined, s1);
    keys.apply(d.ops);
    d = diffState(d.snapshot, s2);
    keys.apply(d.ops);
    a.x = 2;
    d = diffState(d.snapshot, Object.freeze(pad({ a, n: 2 })));
    keys.apply(d.ops);
    expect(opCounts(d.ops)).toEqual({ sets: 1, clears: 0, ranges: 0 });
    expect(decodeState(keys.entries())?.state).toStrictEqual(pad({ a: pad({ x: 2 }), n: 2 }));
    a.x = 3;
    d = diffState(d.snapshot, s1); // the first state object again, changed in place
    expect(opCounts(d.ops)).toEqual({ sets: 2, clears: 0, ranges: 0 }); // a.x and n
  });
  test('names that move, appear, disappear or are renamed in place', () => {
    const s1 = deepFreeze(pad({ a: 1, b: { x: 1 }, c: 'c', d: [1, 2] }));
    const { b: _b, ...noB } = s1;
    const s2 = deepFreeze({ ...noB, b: s1.b }); // b moves to the end, same value
    const s3 = deepFreeze(pad({ a: 1, B: s1.b, c: 'c', d: s1.d })); // renamed at its place
    const s4 = deepFreeze({ z: 0, ...s3 }); // a name in front shifts every other
    const s5 = deepFreeze(pad({ a: 1, c: 'c', d: s1.d })); // one fewer
    const s6 = deepFreeze({ ...s5, e: undefined, f: s1.b }); // more
    const ops = chain([s1, s2, s3, s4, s5, s6, s1]);
    expect(opCounts(ops[1])).toEqual({ sets: 0, clears: 0, ranges: 0 });
    expect(opCounts(ops[2])).toEqual({ sets: 2, clears: 0, ranges: 1 }); // B's marker and x; b's range
    expect(opCounts(ops[3])).toEqual({ sets: 1, clears: 0, ranges: 0 });
    expect(opCounts(ops[4])).toEqual({ sets: 0, clears: 1, ranges: 1 }); // z; B
    expect(opCounts(ops[5])).toEqual({ sets: 3, clears: 0, ranges: 0 }); // e; f's marker and x
    // renamed at its place, holding the very same value
    const renamed = chain([
      deepFreeze(pad({ a: 1, b: 2, c: s1.b })),
      deepFreeze(pad({ a: 1, B: 2, C: s1.b })),
    ]);
    expect(opCounts(renamed[1])).toEqual({ sets: 3, clears: 1, ranges: 1 }); // B; C's marker and x; b; c
  });
  test('an object growing past and shrinking below the size that keeps names and values', () => {
    const sized = (n: number, v: number) =>
      deepFreeze(Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, i === 3 ? v : i])));
    const ops = chain([sized(15, 0), sized(16, 1), sized(17, 2), sized(17, 2), sized(16, 3), sized(15, 4)]);
    expect(ops.slice(1).map(opCounts)).toEqual([
      { sets: 2, clears: 0, ranges: 0 }, // p15, p3
      { sets: 2, clears: 0, ranges: 0 }, // p16, p3
      { sets: 0, clears: 0, ranges: 0 },
      { sets: 1, clears: 1, ranges: 0 }, // p3; p16
      { sets: 1, clears: 1, ranges: 0 }, // p3; p15
    ]);
  });
  test('-0 and 0 differ; NaN equals NaN; undefined differs from absent', () => {
    const zeros = chain([pad({ a: 0 }), pad({ a: -0 }), pad({ a: 0 })]);
    expect(opCounts(zeros.slice(1).flat())).toEqual({ sets: 2, clears: 0, ranges: 0 });
    expect(opCounts(chain([pad({ a: NaN }), pad({ a: NaN })])[1])).toEqual({ sets: 0, clears: 0, ranges: 0 });
    const [, removed, added] = chain([
      pad({ a: undefined, b: 1 }),
      pad({ b: 1 }),
      pad({ b: 1, a: undefined }),
    ]);
    expect(opCounts(removed)).toEqual({ sets: 0, clears: 1, ranges: 0 });
    expect(opCounts(added)).toEqual({ sets: 1, clears: 0, ranges: 0 });
  });
  test('random edits of a state, frozen or not, keeping unchanged parts by identity (property-based)', () => {
    const DELETE = Symbol('delete');
    // a few of the padding names too, so objects also shrink below and grow past the fast path's size
    const name = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'f0', 'f7', 'f19');
    const edit = fc.tuple(name, fc.oneof(stateValue, fc.constant(DELETE)));
    fc.assert(
      fc.property(
        fc.dictionary(name, stateValue, { noNullPrototype: true }).map((o) => pad(o)),
        fc.array(fc.array(edit, { minLength: 1, maxLength: 3 }), { maxLength: 6 }),
        fc.boolean(),
        (start, rounds, freeze) => {
          const prep = <T>(v: T): T => (freeze ? deepFreeze(v) : v);
          const states: Record<string, unknown>[] = [prep(start)];
          for (const edits of rounds) {
            const next: Record<string, unknown> = { ...states[states.length - 1] };
            for (const [name, value] of edits) {
              if (value === DELETE) delete next[name];
              else next[name] = value;
            }
            states.push(prep(next));
          }
          chain(states);
        },
      ),
      { numRuns: 200 },
    );
  });
  test('NOT_SERIALIZABLE still names the full path of a value met on the fast path', () => {
    const accounts = Array.from({ length: 5 }, (_, i) => ({ id: `a${i}`, balance: i }));
    const s = deepFreeze({
      ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`p${i}`, i])),
      accounts,
    });
    const snap = encodeState(s).snapshot;
    const withFn = accounts.map((a, i) => (i === 3 ? { ...a, onChange: () => 0 } : a));
    expect(() => diffState(snap, deepFreeze({ ...s, accounts: withFn }))).toThrow(
      expect.objectContaining({
        code: 'NOT_SERIALIZABLE',
        message: expect.stringMatching(/^state\.accounts\[3\]\.onChange cannot be stored: it is a function/),
      }),
    );
    expect(() => diffState(snap, deepFreeze({ ...s, p7: { deep: [1, () => 0] } }))).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/^state\.p7\.deep\[1\] /) }),
    );
    expect(() => diffState(snap, deepFreeze({ ...s, [Symbol('x')]: 1 }))).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/^state .*symbol-keyed/) }),
    );
    // the old snapshot is still good
    expect(opCounts(diffState(snap, deepFreeze({ ...s, p7: -1 })).ops)).toEqual({
      sets: 1,
      clears: 0,
      ranges: 0,
    });
  });
});

describe('chunk boundaries', () => {
  // A CBOR byte string of n ≥ 65 536 bytes has a 5-byte header.
  const blobEncodingTo = (total: number) => Buffer.alloc(total - 5, 0xab);
  test.each([
    [CHUNK_BYTES - 1, 1],
    [CHUNK_BYTES, 1],
    [CHUNK_BYTES + 1, 2],
    [2 * CHUNK_BYTES, 2],
    [2 * CHUNK_BYTES + 1, 3],
  ])('a value encoding to %i bytes is stored in %i chunk(s) and reads back', async (total, chunks) => {
    const blob = blobEncodingTo(total);
    expect(cborSerializer.encode(blob).length).toBe(total);
    const { entries } = encodeState({ blob });
    const chunkEntries = entries.filter((e) => e.path[2] === 't');
    expect(chunkEntries).toHaveLength(chunks);
    expect(Math.max(...chunkEntries.map((e) => e.value.length))).toBeLessThanOrEqual(LIMITS.valueBytes);
    // and through a backend that enforces the value limit
    const backend = new MemoryBackend();
    const tenant = await backend.openTenant(['chunks']);
    await tenant.transact((tx) => writeState(tx, P, undefined, { blob }));
    const got = await tenant.read((tx) => readState(tx, P));
    expect((got?.state as { blob: Buffer }).blob.equals(blob)).toBe(true);
    await backend.close();
  });
});

describe('a 50 MB state', () => {
  // A transaction holds at most 10 MB, so a 50 MB state cannot be written in one: this test checks
  // the pure encode/decode of all of it, then stores it through the memory backend in several
  // transactions (the ops applied in batches), reads it back in one read, and diffs a one-field
  // update against what was read.
  test('encodes, stores in batches, reads back, and updates one field with one key', async () => {
    const mb = (seed: number) => {
      const b = Buffer.allocUnsafe(1 << 20);
      for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
      return b;
    };
    const state = {
      blobs: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`b${i}`, mb(i)])), // 40 MB, one key per MB... in 11 chunks each
      big: Buffer.concat(Array.from({ length: 8 }, (_, i) => mb(100 + i))), // 8 MB in one value: 84 chunks
      items: Array.from({ length: 2000 }, (_, i) => ({ id: `item-${i}`, text: 'y'.repeat(1000), n: i })), // 2 MB
      count: 0,
    };
    const { entries, snapshot } = encodeState(state);
    const totalBytes = entries.reduce((n, e) => n + e.value.length, 0);
    expect(totalBytes).toBeGreaterThan(50_000_000);
    expect(Math.max(...entries.map((e) => e.value.length))).toBeLessThanOrEqual(CHUNK_BYTES);
    expect(decodeState(entries)?.state).toStrictEqual(state);

    const backend = new MemoryBackend();
    const tenant = await backend.openTenant(['big']);
    try {
      const ops = diffState(undefined, state).ops;
      let batch: (typeof ops)[number][] = [];
      let batchBytes = 0;
      const flush = async () => {
        const b = batch;
        await tenant.transact((tx) => {
          applyStateOps(tx, P, b);
        });
        batch = [];
        batchBytes = 0;
      };
      for (const op of ops) {
        const size = op.type === 'set' ? op.value.length + 100 : 100;
        if (batchBytes + size > 8_000_000) await flush();
        batch.push(op);
        batchBytes += size;
      }
      await flush();
      const read = await tenant.read((tx) => readState(tx, P));
      expect(read?.state).toStrictEqual(state);
      expect(read?.snapshot.keyCount).toBe(snapshot.keyCount);
      const update = await tenant.transact((tx) => writeState(tx, P, read?.snapshot, { ...state, count: 1 }));
      expect(update.keysWritten).toBe(2); // the field and the version
      expect(update.bytesWritten).toBeLessThan(100);
    } finally {
      await backend.close();
    }
  }, 120_000);
});

describe('NOT_SERIALIZABLE names the path inside the state', () => {
  const fails = (state: unknown, message: RegExp) =>
    expect(() => diffState(undefined, state)).toThrow(
      expect.objectContaining({ code: 'NOT_SERIALIZABLE', message: expect.stringMatching(message) }),
    );
  class Wallet {
    balance = 0;
  }
  test('inside an id-list (stored per item)', () =>
    fails(
      { accounts: [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd', onChange: () => 0 }] },
      /^state\.accounts\[3\]\.onChange cannot be stored: it is a function/,
    ));
  test('inside an array stored as one value', () =>
    fails({ accounts: [1, 2, 3, { onChange: () => 0 }] }, /^state\.accounts\[3\]\.onChange .*function/));
  test('a class instance, a symbol, the root itself', () => {
    fails({ w: new Wallet() }, /^state\.w .*instance of Wallet/);
    fails({ deep: { s: Symbol('s') } }, /^state\.deep\.s .*symbol/);
    fails(new Wallet(), /^state .*Wallet/);
    fails(() => 1, /^state .*function/);
    fails({ m: new Map([['k', { f: () => 1 }]]) }, /^state\.m\.get\("k"\)\.f /);
    fails({ 'odd key': [{ id: 'x', w: new Wallet() }] }, /^state\["odd key"\]\[0\]\.w /);
  });
  test('a diff that introduces one rejects, and the old snapshot stays usable', () => {
    const snap = encodeState({ a: 1 }).snapshot;
    expect(() => diffState(snap, { a: 1, b: new Wallet() })).toThrow(
      expect.objectContaining({ code: 'NOT_SERIALIZABLE' }),
    );
    expect(opCounts(diffState(snap, { a: 2 }).ops)).toEqual({ sets: 1, clears: 0, ranges: 0 });
  });
});

describe('shared and cyclic references', () => {
  test('a mutable object shared by two properties stays shared (the parent is stored whole)', () => {
    const shared = { n: 1 };
    const s = { x: { a: shared, other: 1 }, y: { b: shared }, z: 3 };
    const got = pureRoundTrip(s) as typeof s;
    expect(got).toStrictEqual(s);
    expect(got.x.a).toBe(got.y.b);
  });
  test('sharing inside one property only stores that property whole', () => {
    const shared = { n: 1 };
    const s = { keep: { p: 1, q: 2 }, pair: { a: shared, b: shared } };
    const { entries } = encodeState(s);
    expect(entries.some((e) => e.path.join('/') === 'm/keep/m/p/t/0')).toBe(true); // still per property
    expect(entries.some((e) => e.path.join('/') === 'm/pair/t/0')).toBe(true); // stored whole
    const got = decodeState(entries)?.state as typeof s;
    expect(got.pair.a).toBe(got.pair.b);
  });
  test('cycles', () => {
    const s: Record<string, unknown> = { a: 1, list: [{ id: 'x' }] };
    s.self = s;
    const got = pureRoundTrip(s) as typeof s;
    expect(got.self).toBe(got);
    const inner: Record<string, unknown> = { v: 1 };
    inner.me = inner;
    const got2 = pureRoundTrip({ other: 2, inner }) as { inner: { me: unknown } };
    expect(got2.inner.me).toBe(got2.inner);
  });
  test('deep-frozen objects are values: each place stores its own copy', () => {
    const shared = deepFreeze({ n: 1 });
    const s = deepFreeze({ a: { v: shared }, b: { v: shared } });
    const { entries } = encodeState(s);
    expect(entries.some((e) => e.path.join('/') === 'm/a/m/v/m/n/t/0')).toBe(true);
    expect(pureRoundTrip(s)).toStrictEqual(s);
  });
});

describe('versions', () => {
  let backend: MemoryBackend;
  let tenant: Tenant;
  beforeEach(async () => {
    backend = new MemoryBackend();
    tenant = await backend.openTenant(['v']);
  });
  afterEach(() => backend.close());

  test('every write stamps a new, larger version; reading returns it', async () => {
    expect(await tenant.read((tx) => readVersion(tx, P))).toBeUndefined();
    const w1 = await tenant.transact((tx) => writeState(tx, P, undefined, { a: 1 }));
    const v1 = await tenant.read((tx) => readVersion(tx, P));
    expect(v1).toHaveLength(10);
    await tenant.transact((tx) => writeState(tx, P, w1.snapshot, { a: 1 })); // even with nothing changed
    const v2 = await tenant.read((tx) => readVersion(tx, P));
    expect(Buffer.compare(v2 as Buffer, v1 as Buffer)).toBe(1);
    const read = await tenant.read((tx) => readState(tx, P));
    expect(read?.version?.equals(v2 as Buffer)).toBe(true);
  });

  test("the version equals the writing commit's versionstamp (what a cache compares)", async () => {
    const stamp = await tenant
      .transact(async (tx) => {
        writeState(tx, P, undefined, { a: 1 });
        return tx.getVersionstamp;
      })
      .then((get) => get);
    expect(stamp).toBeDefined();
    let vs: Promise<Buffer> | undefined;
    await tenant.transact((tx) => {
      writeState(tx, P, undefined, { a: 2 });
      vs = tx.getVersionstamp();
    });
    const stored = await tenant.read((tx) => readVersion(tx, P));
    expect(stored?.equals(await (vs as Promise<Buffer>))).toBe(true);
  });

  test('two stores (two processes): each reads what the other wrote, and diffs from there', async () => {
    const a = new StateStore(P);
    const b = new StateStore(P);
    const s1 = { list: [{ id: 'x', v: 1 }], n: 1 };
    await tenant.transact((tx) => a.write(tx, undefined, s1));
    const seenByB = await tenant.read((tx) => b.read(tx));
    expect(seenByB?.state).toStrictEqual(s1);
    const s2 = { list: [{ id: 'w', v: 0 }, ...(seenByB?.state as typeof s1).list], n: 2 };
    const r = await tenant.transact((tx) => b.write(tx, seenByB?.state, s2));
    expect(r.keysWritten).toBe(6); // position, marker, id, v of w; n; version
    const seenByA = await tenant.read((tx) => a.read(tx));
    expect(seenByA?.state).toStrictEqual(s2);
  });

  test('a StateStore that does not know `previous` rewrites in full, correctly', async () => {
    const store = new StateStore(P);
    await tenant.transact((tx) => store.write(tx, undefined, { a: 1, b: { c: 2 } }));
    const r = await tenant.transact((tx) => store.write(tx, { a: 1, b: { c: 2 } }, { a: 1 }));
    expect(r.rangesCleared).toBe(1);
    expect((await tenant.read((tx) => store.read(tx)))?.state).toStrictEqual({ a: 1 });
    // primitives are remembered by value
    await tenant.transact((tx) => store.write(tx, { a: 1 }, 5));
    const p = await tenant.transact((tx) => store.write(tx, 5, 6));
    expect(p).toMatchObject({ keysWritten: 2, rangesCleared: 0, keysCleared: 0 });
  });
});

describe('what is stored how', () => {
  const paths = (state: unknown) => encodeState(state).entries.map((e) => e.path.join('/'));
  test('arrays that are not id-lists are one value', () => {
    expect(paths({ a: [{ id: 'x' }, { id: 'x' }] })).toEqual(['m', 'm/a/t/0']); // duplicate ids
    expect(paths({ a: [{ id: 'x' }, { id: 7 }] })).toEqual(['m', 'm/a/t/0']); // a non-string id
    expect(paths({ a: [{ id: 'x' }, 'y'] })).toEqual(['m', 'm/a/t/0']); // not all objects
    expect(paths({ a: [{ id: 'x' }, new Map([['id', 'y']])] })).toEqual(['m', 'm/a/t/0']);
    expect(paths({ a: [] })).toEqual(['m', 'm/a/l']); // an empty array is an (empty) id-list
  });
  test('Map, Set, Date and binary values are one value each', () => {
    expect(
      paths({ m: new Map([['k', { x: 1 }]]), s: new Set([1]), d: new Date(0), b: Buffer.from('x') }),
    ).toEqual(['m', 'm/b/t/0', 'm/d/t/0', 'm/m/t/0', 'm/s/t/0']);
  });
  test('an object whose names would make too long a key is one value', () => {
    const long = 'k'.repeat(1_000);
    expect(paths({ a: { [long]: 1, b: 2 } })).toEqual(['m', 'm/a/t/0']);
    expect(paths({ a: [{ id: long }] })).toEqual(['m', 'm/a/t/0']);
  });
  test('deep nesting stops splitting before keys get too long, and round-trips through a backend', async () => {
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 400; i++) deep = { [`level-${i}`]: deep, n: i };
    const { entries } = encodeState(deep);
    const longest = Math.max(...entries.map((e) => pack(e.path as never).length));
    expect(longest).toBeLessThanOrEqual(2_100);
    const backend = new MemoryBackend();
    const tenant = await backend.openTenant(['deep']);
    await tenant.transact((tx) => writeState(tx, P, undefined, deep));
    expect((await tenant.read((tx) => readState(tx, P)))?.state).toStrictEqual(deep);
    await backend.close();
  });
  test('objects come back with their properties in key order (integer-like names first, as JS does)', () => {
    const got = pureRoundTrip({ zeta: 1, alpha: 2, 10: 'x', 2: 'y' }) as object;
    expect(Object.keys(got)).toEqual(['2', '10', 'alpha', 'zeta']);
  });
});

describe('a custom serializer', () => {
  test('is used for every value, and its own rules apply', () => {
    const json: Serializer = {
      encode: (v) => Buffer.from(JSON.stringify(v === undefined ? null : v)),
      decode: (b) => JSON.parse(b.toString()),
    };
    const s = { a: 1, list: [{ id: 'x', when: 'today' }], arr: [1, 'two'] };
    const { entries } = encodeState(s, json);
    expect(entries.find((e) => e.path.join('/') === 'm/a/t/0')?.value.toString()).toBe('1');
    expect(decodeState(entries, json)?.state).toStrictEqual(s);
  });
});
