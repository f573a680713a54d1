/**
 * State codec benchmarks (pure: no backend, so the figures are the codec's own):
 *
 *   npx ts-node --transpile-only bench/codec.ts          (or through bench/index.ts: npm run bench)
 *
 * - codec.one_prop_update_keys_written      data keys a one-property update of a 10,000-property
 *                                           state writes (goal 1; the version key comes on top)
 * - codec.one_prop_update_keys_with_version the same, counting the version key (what the backend sees)
 * - codec.one_prop_update_ms                time of that update through StateStore.write, median, for
 *                                           a deep-frozen state as the runtime keeps it (goal ≤ 1 ms):
 *                                           everything the runtime's write costs in the codec — the
 *                                           snapshot lookup, the diff, encoding the changed value, the
 *                                           keys of the set operations and the version key
 * - codec.one_prop_update_unfrozen_ms       the same for a state that is not frozen: every part is
 *                                           walked and every non-primitive value re-encoded to compare
 * - codec.object_keys_10k_ms                for scale: V8's Object.keys alone on that new state, which
 *                                           any diff must list to find added properties (the diff
 *                                           reuses the list the runtime's deepFreeze made: frozen-keys.ts)
 * - codec.freeze_10k_ms                     the runtime's deepFreeze of that new state (outside the
 *                                           codec, paid once per write; it lists the keys for both)
 * - codec.update_bytes_1kb / _1mb / _10mb   key + value bytes a one-field update writes (version key
 *                                           included) for states of about 1 KB, 1 MB and 10 MB
 * - codec.state_bytes_1kb / _1mb / _10mb    the state serialized whole (what a whole-value rewrite
 *                                           would write on every update), for comparison
 *
 * - codec.idlist_100k_item_update_ms        time through StateStore.write, median, of changing one field
 *                                           of one item of a 100,000-item id-list (a deep-frozen state as
 *                                           the runtime keeps it: the other items are the very same
 *                                           frozen objects as before); goal: a few ms
 * - codec.idlist_100k_item_update_keys_written   data keys that update writes (1: the changed field)
 * - codec.idlist_100k_item_update_keys_with_version  the same with the version key (2)
 * - codec.idlist_100k_append_ms             the same for appending one item to that list (the list
 *                                           grows by one per run)
 * - codec.idlist_100k_remove_ms             the same for removing one item from the middle of it
 *
 * The 10,000 properties mix numbers, strings, small objects and small arrays; the sized states are
 * objects holding an id-list of records and a few settings, with one record's field updated. The
 * id-list figures use a state `{ title, items }` whose items are `{ id, text, n, done }`; the list
 * figures take BENCH_CODEC_IDLIST_RUNS runs each (default 50, after 5 warm-up runs).
 */
import type { Transaction } from '../src/backend/types';
import { deepFreeze } from '../src/kernel/freeze';
import { cborSerializer, encodeState, StateStore, writeState } from '../src/codec';

const RUNS = Number(process.env.BENCH_CODEC_RUNS ?? 300);
const IDLIST_RUNS = Number(process.env.BENCH_CODEC_IDLIST_RUNS ?? 50);
const IDLIST_WARMUP = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A transaction that only counts what would be written (writeState needs nothing else). */
function countingTransaction(): Transaction {
  const unsupported = () => {
    throw new Error('not used by the codec benchmark');
  };
  return {
    get: unsupported,
    getRange: unsupported,
    set: () => undefined,
    clear: () => undefined,
    clearRange: () => undefined,
    add: unsupported,
    setVersionstampedKey: unsupported,
    setVersionstampedValue: () => undefined,
    getVersionstamp: unsupported,
    watch: unsupported,
  };
}

function tenThousandProps(): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  for (let i = 0; i < 10_000; i++) {
    switch (i % 4) {
      case 0:
        s[`p${i}`] = i;
        break;
      case 1:
        s[`p${i}`] = `value number ${i}`;
        break;
      case 2:
        s[`p${i}`] = { n: i, label: `item ${i}`, on: i % 3 === 0 };
        break;
      default:
        s[`p${i}`] = [i, i + 1, `t${i}`];
    }
  }
  return s;
}

/** An object with an id-list of ~100-byte records, about `bytes` in all. */
function sizedState(bytes: number): {
  settings: Record<string, unknown>;
  records: Record<string, unknown>[];
} {
  const n = Math.max(1, Math.round(bytes / 100));
  return {
    settings: { title: 'bench', version: 1, owner: 'someone' },
    records: Array.from({ length: n }, (_, i) => ({
      id: `r${i}`,
      name: `record number ${i}`.padEnd(66, '.'),
      count: i,
      tags: ['a', 'b'],
    })),
  };
}

function timeOnePropUpdate(frozen: boolean): {
  ms: number;
  keysMs: number;
  freezeMs: number;
  keys: number;
  keysWithVersion: number;
} {
  const prep = <T>(v: T): T => (frozen ? deepFreeze(v) : v);
  // what the runtime does per write: StateStore.write(tx, previous, next) in the handler's transaction
  const tx = countingTransaction();
  const store = new StateStore(['dgen_server', 'Bench', 's']);
  let state = prep(tenThousandProps());
  store.write(tx, undefined, state);
  // warm up, then measure; each run changes one property of the last state, as a handler would
  const samples: number[] = [];
  const keysSamples: number[] = [];
  const freezeSamples: number[] = [];
  let keysWithVersion = 0;
  for (let run = 0; run < RUNS + 20; run++) {
    const spread = { ...state, p4: run }; // p4 is a number property
    const tf = process.hrtime.bigint();
    const next = prep(spread); // the runtime freezes every new state before writing it
    const t0 = process.hrtime.bigint();
    const stats = store.write(tx, state, next);
    const t1 = process.hrtime.bigint();
    Object.keys(next); // what V8 alone needs to list the properties of the new object
    const t2 = process.hrtime.bigint();
    if (run >= 20) {
      samples.push(Number(t1 - t0) / 1e6);
      keysSamples.push(Number(t2 - t1) / 1e6);
      freezeSamples.push(Number(t0 - tf) / 1e6);
    }
    keysWithVersion = stats.keysWritten;
    state = next;
  }
  return {
    ms: median(samples),
    keysMs: median(keysSamples),
    freezeMs: median(freezeSamples),
    keys: keysWithVersion - 1,
    keysWithVersion,
  };
}

interface ListItem {
  id: string;
  text: string;
  n: number;
  done: boolean;
}

/**
 * One field of one item, one appended item, one removed item of a deep-frozen 100,000-item id-list,
 * each written through StateStore.write as the runtime does (the runs continue one chain of states).
 */
function timeIdList(): { updateMs: number; updateKeys: number; appendMs: number; removeMs: number } {
  const tx = countingTransaction();
  const store = new StateStore(['dgen_server', 'Bench', 's']);
  const item = (i: number): ListItem => ({ id: `item-${i}`, text: `item number ${i}`, n: i, done: false });
  let state = deepFreeze({ title: 'bench', items: Array.from({ length: 100_000 }, (_, i) => item(i)) });
  store.write(tx, undefined, state);
  const timed = (change: (s: typeof state, run: number) => typeof state): { ms: number; keys: number } => {
    const samples: number[] = [];
    let keys = 0;
    for (let run = 0; run < IDLIST_RUNS + IDLIST_WARMUP; run++) {
      const next = deepFreeze(change(state, run)); // the handler's new state, frozen by the runtime
      const t0 = process.hrtime.bigint();
      const stats = store.write(tx, state, next);
      const t1 = process.hrtime.bigint();
      if (run >= IDLIST_WARMUP) samples.push(Number(t1 - t0) / 1e6);
      keys = stats.keysWritten;
      state = next;
    }
    return { ms: median(samples), keys };
  };
  const update = timed((s, run) => {
    const items = s.items.slice();
    const k = (run * 7919) % items.length;
    items[k] = { ...items[k], n: -run - 1 };
    return { ...s, items };
  });
  let nextId = 100_000;
  const append = timed((s) => ({ ...s, items: [...s.items, item(nextId++)] }));
  const remove = timed((s) => {
    const k = Math.floor(s.items.length / 2);
    return { ...s, items: [...s.items.slice(0, k), ...s.items.slice(k + 1)] };
  });
  return { updateMs: update.ms, updateKeys: update.keys, appendMs: append.ms, removeMs: remove.ms };
}

function updateBytes(bytes: number): { update: number; whole: number } {
  const state = deepFreeze(sizedState(bytes));
  const { snapshot } = encodeState(state);
  const whole = cborSerializer.encode(state).length;
  const i = Math.floor(state.records.length / 2);
  const records = [...state.records];
  records[i] = { ...records[i], count: -1 };
  const stats = writeState(
    countingTransaction(),
    ['dgen_server', 'Bench', 's'],
    snapshot,
    deepFreeze({ ...state, records }),
  );
  return { update: stats.bytesWritten, whole };
}

export async function benchCodec(): Promise<Record<string, number>> {
  const frozen = timeOnePropUpdate(true);
  const unfrozen = timeOnePropUpdate(false);
  const idList = timeIdList();
  const sizes: Array<[string, number]> = [
    ['1kb', 1_000],
    ['1mb', 1_000_000],
    ['10mb', 10_000_000],
  ];
  const bytes = sizes.map(([name, n]) => [name, updateBytes(n)] as const);

  console.log('bytes written by a one-field update:');
  console.log('  state   serialized whole (bytes)   one-field update (bytes)');
  for (const [name, b] of bytes) {
    console.log(`  ${name.padEnd(6)}  ${String(b.whole).padStart(24)}   ${String(b.update).padStart(24)}`);
  }

  const figures: Record<string, number> = {
    'codec.one_prop_update_keys_written': frozen.keys,
    'codec.one_prop_update_keys_with_version': frozen.keysWithVersion,
    'codec.one_prop_update_ms': Number(frozen.ms.toFixed(4)),
    'codec.one_prop_update_unfrozen_ms': Number(unfrozen.ms.toFixed(4)),
    'codec.object_keys_10k_ms': Number(frozen.keysMs.toFixed(4)),
    'codec.freeze_10k_ms': Number(frozen.freezeMs.toFixed(4)),
  };
  figures['codec.idlist_100k_item_update_ms'] = Number(idList.updateMs.toFixed(4));
  figures['codec.idlist_100k_item_update_keys_written'] = idList.updateKeys - 1;
  figures['codec.idlist_100k_item_update_keys_with_version'] = idList.updateKeys;
  figures['codec.idlist_100k_append_ms'] = Number(idList.appendMs.toFixed(4));
  figures['codec.idlist_100k_remove_ms'] = Number(idList.removeMs.toFixed(4));
  for (const [name, b] of bytes) figures[`codec.update_bytes_${name}`] = b.update;
  for (const [name, b] of bytes) figures[`codec.state_bytes_${name}`] = b.whole;
  return figures;
}

if (require.main === module) void benchCodec().then((r) => console.log(r));
