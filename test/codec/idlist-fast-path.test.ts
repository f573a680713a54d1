import fc from 'fast-check';
import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import {
  cborSerializer,
  decodeState,
  diffState,
  encodeState,
  StateStore,
  type CheckedSerializer,
  type StateOp,
  type StateSnapshot,
} from '../../src/codec';
import { deepFreeze } from '../../src/kernel/freeze';
import { KeyMap, opCounts } from './arbitraries';

// The id-list diff walks the old and the new list in parallel from both ends: a position holding
// the very same frozen item as last time is settled by identity, an item with the same id in the
// same place is diffed in place, and only the part in between (inserts, removals, moves) is diffed
// by id. These tests pin that down: what is skipped, what is still noticed, and that snapshots made
// this way are exact for every later diff.

interface Item {
  id: string;
  v: number;
  text?: string;
  m?: Map<string, number>;
}

const items = (n: number, from = 0): Item[] =>
  Array.from({ length: n }, (_, i) => ({ id: `i${from + i}`, v: from + i, text: 'x'.repeat(20) }));

/** A serializer that counts the values it encodes. */
function counting(): { serializer: CheckedSerializer; count: () => number; reset: () => void } {
  let n = 0;
  const serializer: CheckedSerializer = {
    ...cborSerializer,
    encodeChecked: (v, normalize) => {
      n++;
      return cborSerializer.encodeChecked(v, normalize);
    },
  };
  return { serializer, count: () => n, reset: () => (n = 0) };
}

/** Diffs a chain of states, applying each diff to a key map and checking it reads back exactly. */
class Chain {
  readonly keys = new KeyMap();
  snapshot: StateSnapshot | undefined;

  write(state: unknown): readonly StateOp[] {
    const { ops, snapshot } = diffState(this.snapshot, state);
    this.keys.apply(ops);
    this.snapshot = snapshot;
    const read = decodeState(this.keys.entries());
    expect(read?.state).toStrictEqual(state);
    // nothing left to write, from the diff's snapshot nor from one read back
    expect(diffState(snapshot, state).ops).toHaveLength(0);
    expect(diffState(read?.snapshot, state).ops).toHaveLength(0);
    return ops;
  }
}

describe('id-list fast path', () => {
  test('unchanged frozen items are skipped by identity: only the changed field is encoded', () => {
    const c = counting();
    const list = deepFreeze(items(1000));
    const snap = encodeState({ list }, c.serializer).snapshot;
    const next = list.slice();
    next[500] = { ...next[500], v: -1 };
    c.reset();
    const d = diffState(snap, deepFreeze({ list: next }), c.serializer);
    expect(c.count()).toBe(1);
    expect(d.ops).toEqual([
      expect.objectContaining({ type: 'set', path: ['m', 'list', 'l', 'v', 'i500', 'm', 'v', 't', 0] }),
    ]);
  });

  test('the very same frozen list, or a copy holding the same items, writes nothing', () => {
    const c = counting();
    const list = deepFreeze(items(100));
    const snap = encodeState({ list }, c.serializer).snapshot;
    c.reset();
    const same = diffState(snap, deepFreeze({ list }), c.serializer);
    expect(same.ops).toHaveLength(0);
    const copy = diffState(snap, deepFreeze({ list: list.slice() }), c.serializer);
    expect(copy.ops).toHaveLength(0);
    expect(c.count()).toBe(0);
  });

  test('an item replaced in place by another object with the same id is diffed', () => {
    const chain = new Chain();
    const list = deepFreeze(items(50));
    chain.write(deepFreeze({ list }));
    const next = list.slice();
    next[0] = { id: 'i0', v: 0, text: 'changed' }; // first
    next[49] = { id: 'i49', v: 49, text: 'x'.repeat(20) }; // last, equal content: no write
    next[20] = { id: 'i20', v: 20 }; // a property removed
    const ops = chain.write(deepFreeze({ list: next }));
    expect(opCounts(ops)).toEqual({ sets: 1, clears: 1, ranges: 0 });
  });

  test('mutable (unfrozen) items changed in place are still noticed', () => {
    const chain = new Chain();
    const list = items(30);
    chain.write({ list });
    list[3].v = 333;
    list[29].text = 'last';
    const ops = chain.write({ list });
    expect(opCounts(ops)).toEqual({ sets: 2, clears: 0, ranges: 0 });
    // and again, now that the snapshot came from a fast-path diff
    list[3].v = 3333;
    expect(opCounts(chain.write({ list }))).toEqual({ sets: 1, clears: 0, ranges: 0 });
  });

  test('a mutable part inside an item of a frozen list is still noticed', () => {
    const chain = new Chain();
    const m = new Map([['k', 1]]); // deepFreeze does not freeze a Map
    const list = deepFreeze([
      { id: 'a', v: 1 },
      { id: 'b', v: 2, m },
      { id: 'c', v: 3 },
    ] as Item[]);
    chain.write(deepFreeze({ list }));
    m.set('k', 2);
    expect(opCounts(chain.write(deepFreeze({ list })))).toEqual({ sets: 1, clears: 0, ranges: 0 });
    const next = list.slice();
    next[0] = { id: 'a', v: 10 };
    m.set('k', 3);
    expect(opCounts(chain.write(deepFreeze({ list: next })))).toEqual({ sets: 2, clears: 0, ranges: 0 });
  });

  test('an unfrozen array of frozen items', () => {
    const chain = new Chain();
    const list = items(20).map((x) => deepFreeze(x));
    chain.write({ list });
    list[5] = deepFreeze({ ...list[5], v: -5 });
    expect(opCounts(chain.write({ list }))).toEqual({ sets: 1, clears: 0, ranges: 0 });
    list.push(deepFreeze({ id: 'new', v: 1 }));
    expect(opCounts(chain.write({ list }))).toEqual({ sets: 4, clears: 0, ranges: 0 });
  });

  test('insert, remove and reorder after fast-path writes write only what moved', () => {
    const chain = new Chain();
    let list = deepFreeze(items(100));
    chain.write(deepFreeze({ list }));
    const step = (next: Item[]) => {
      list = deepFreeze(next);
      return opCounts(chain.write(deepFreeze({ list })));
    };
    // fast-path updates
    expect(step(list.map((x, i) => (i === 10 ? { ...x, v: -10 } : x)))).toEqual({
      sets: 1,
      clears: 0,
      ranges: 0,
    });
    expect(step(list.map((x, i) => (i === 90 ? { ...x, v: -90 } : x)))).toEqual({
      sets: 1,
      clears: 0,
      ranges: 0,
    });
    // insert in the middle: position, marker and three properties
    expect(step([...list.slice(0, 50), { id: 'mid', v: 0, text: '' }, ...list.slice(50)])).toEqual({
      sets: 5,
      clears: 0,
      ranges: 0,
    });
    // append and prepend
    expect(step([...list, { id: 'end', v: 1 }])).toEqual({ sets: 4, clears: 0, ranges: 0 });
    expect(step([{ id: 'start', v: 1 }, ...list])).toEqual({ sets: 4, clears: 0, ranges: 0 });
    // remove the first, one in the middle, the last
    expect(step(list.slice(1))).toEqual({ sets: 0, clears: 1, ranges: 1 });
    expect(step([...list.slice(0, 30), ...list.slice(31)])).toEqual({ sets: 0, clears: 1, ranges: 1 });
    expect(step(list.slice(0, -1))).toEqual({ sets: 0, clears: 1, ranges: 1 });
    // move the last item to the front, swap two neighbours: one position key each
    expect(step([list[list.length - 1], ...list.slice(0, -1)])).toEqual({ sets: 1, clears: 0, ranges: 0 });
    const swapped = list.slice();
    [swapped[40], swapped[41]] = [swapped[41], swapped[40]];
    expect(step(swapped)).toEqual({ sets: 1, clears: 0, ranges: 0 });
    // a move together with a change of the moved item and of a neighbour
    const moved = list.slice();
    const [x] = moved.splice(60, 1);
    moved.splice(20, 0, { ...x, v: 1234 });
    moved[0] = { ...moved[0], v: 4321 };
    expect(step(moved)).toEqual({ sets: 3, clears: 0, ranges: 0 });
    // reverse: every item but one moves
    expect(step(list.slice().reverse())).toEqual({ sets: list.length - 1, clears: 0, ranges: 0 });
    // then the fast path again
    expect(step(list.map((x, i) => (i === 7 ? { ...x, v: 7777 } : x)))).toEqual({
      sets: 1,
      clears: 0,
      ranges: 0,
    });
  });

  test('a removal and an insertion at the same place, and an item replaced by one with another id', () => {
    const chain = new Chain();
    const list = deepFreeze(items(10));
    chain.write(deepFreeze({ list }));
    const next = list.slice();
    next[4] = { id: 'other', v: 4 };
    expect(opCounts(chain.write(deepFreeze({ list: next })))).toEqual({ sets: 4, clears: 1, ranges: 1 });
  });

  test('a duplicate id after a fast-path write makes a value; an id-list again after that', () => {
    const chain = new Chain();
    const list = deepFreeze(items(10));
    chain.write(deepFreeze({ list }));
    chain.write(deepFreeze({ list: [...list, { id: 'i3', v: 0 }] })); // duplicates a prefix item
    chain.write(deepFreeze({ list: [{ id: 'i8', v: 0 }, ...list] })); // duplicates a suffix item
    const dupInMiddle = list.slice();
    dupInMiddle.splice(5, 0, { id: 'i1', v: 0 });
    chain.write(deepFreeze({ list: dupInMiddle }));
    const notAnItem = list.slice() as unknown[];
    notAnItem[5] = { v: 1 }; // no id
    chain.write(deepFreeze({ list: notAnItem }));
    chain.write(deepFreeze({ list }));
    expect(opCounts(chain.write(deepFreeze({ list: list.slice(1) })))).toEqual({
      sets: 0,
      clears: 1,
      ranges: 1,
    });
  });

  test('a snapshot stays valid after several later writes (it is never changed)', () => {
    const c = new Chain();
    let list = deepFreeze(items(400));
    c.write(deepFreeze({ list }));
    const saved: Array<{ snapshot: StateSnapshot; keys: KeyMap; state: unknown }> = [];
    for (let w = 0; w < 40; w++) {
      const next = list.slice();
      if (w % 5 === 3) next.splice((w * 37) % next.length, 1);
      else if (w % 5 === 4) next.splice((w * 53) % next.length, 0, { id: `new${w}`, v: w });
      else next[(w * 61) % next.length] = { ...next[(w * 61) % next.length], v: -w };
      list = deepFreeze(next);
      const state = deepFreeze({ list });
      c.write(state);
      // a copy of what is stored now, with the snapshot of it
      saved.push({ snapshot: c.snapshot as StateSnapshot, keys: new KeyMap().apply(allSets(c.keys)), state });
    }
    // diff a much later state against each earlier snapshot: applied to that time's keys, it is exact
    const last = deepFreeze({ list: [...list.slice(10).reverse(), { id: 'z', v: 0 }] });
    for (const s of saved) {
      s.keys.apply(diffState(s.snapshot, last).ops);
      expect(decodeState(s.keys.entries())?.state).toStrictEqual(last);
    }
  });

  test('random edits of a frozen list (property-based)', () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('update' as const), at: fc.nat(), v: fc.integer() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), v: fc.integer() }),
      fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('move' as const), at: fc.nat(), to: fc.nat() }),
      fc.record({ kind: fc.constant('mutate' as const), at: fc.nat(), v: fc.integer() }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(edit, { maxLength: 3 }), { maxLength: 12 }),
        fc.boolean(),
        (writes, freeze) => {
          const chain = new Chain();
          let list: Item[] = items(8);
          if (freeze) deepFreeze(list);
          chain.write({ list });
          let fresh = 0;
          for (const edits of writes) {
            const next = list.slice();
            for (const e of edits) {
              const at = next.length ? e.at % next.length : 0;
              if (e.kind === 'update' && next.length) next[at] = { ...next[at], v: e.v };
              else if (e.kind === 'insert')
                next.splice(e.at % (next.length + 1), 0, { id: `n${fresh++}`, v: e.v });
              else if (e.kind === 'remove' && next.length) next.splice(at, 1);
              else if (e.kind === 'move' && next.length)
                next.splice(e.to % next.length, 0, ...next.splice(at, 1));
              else if (e.kind === 'mutate' && next.length && !Object.isFrozen(next[at])) next[at].v = e.v;
            }
            list = freeze ? deepFreeze(next) : next;
            chain.write({ list });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('through StateStore: a one-item update of a 2,000-item frozen list writes one key and the version', async () => {
    const backend = new MemoryBackend();
    const tenant = await backend.openTenant(['fast']);
    const store = new StateStore(['srv', 's']);
    let state = deepFreeze({ title: 't', list: items(2000) });
    await tenant.transact((tx) => store.write(tx, undefined, state));
    for (let run = 0; run < 5; run++) {
      const list = state.list.slice();
      list[run * 300] = { ...list[run * 300], v: -run };
      const next = deepFreeze({ ...state, list });
      const stats = await tenant.transact((tx) => store.write(tx, state, next));
      expect(stats).toMatchObject({ keysWritten: 2, keysCleared: 0, rangesCleared: 0 });
      state = next;
    }
    const read = await tenant.transact((tx) => new StateStore(['srv', 's']).read(tx));
    expect(read?.state).toStrictEqual(state);
    await backend.close();
  });
});

/** The set operations that rebuild `keys` (a copy of what is stored). */
function allSets(keys: KeyMap): StateOp[] {
  return keys.entries().map((e) => ({ type: 'set' as const, path: e.path, value: e.value }));
}
