import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import { StateStore } from '../../src/codec';
import { ownKeys, REMEMBER_KEYS_FROM } from '../../src/codec/frozen-keys';
import { deepFreeze } from '../../src/kernel/freeze';

/** The key lists the runtime's deepFreeze hands the codec's diff (src/codec/frozen-keys.ts). */
const big = (n: number, extra: Record<string, unknown> = {}) => {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) o[`k${i}`] = i % 2 ? i : { i };
  return { ...o, ...extra };
};

test('deepFreeze remembers the keys of large objects only, and only frozen ones', () => {
  const large = deepFreeze(big(REMEMBER_KEYS_FROM));
  const small = deepFreeze(big(3));
  const open = big(REMEMBER_KEYS_FROM);
  expect(ownKeys(large)).toEqual(Object.keys(large));
  expect(ownKeys(small)).toEqual(Object.keys(small));
  open.added = 1; // an unfrozen object is listed afresh every time
  expect(ownKeys(open)).toContain('added');
});

test('diffs of large frozen states with remembered keys: changed, added and removed properties', async () => {
  const backend = new MemoryBackend();
  const tenant = await backend.openTenant(['fk']);
  const store = new StateStore(['s']);
  let state: Record<string, unknown> = deepFreeze(big(600));
  await tenant.transact((tx) => void store.write(tx, undefined, state));
  const steps: Array<(s: Record<string, unknown>) => Record<string, unknown>> = [
    (s) => ({ ...s, k1: 'changed' }),
    (s) => ({ ...s, fresh: [1, 2, 3] }),
    (s) => {
      const { k2: _gone, ...rest } = s;
      return rest;
    },
    (s) => ({ ...s, k4: { i: 4, deeper: true } }),
  ];
  for (const step of steps) {
    const next = deepFreeze(step(state));
    const stats = await tenant.transact((tx) => store.write(tx, state, next));
    expect(stats.keysWritten + stats.keysCleared).toBeLessThanOrEqual(4); // one change (+ version), never a rewrite
    state = next;
    const read = await tenant.read((tx) => new StateStore(['s']).read(tx));
    expect(read?.state).toEqual(state);
  }
  await backend.close();
});
