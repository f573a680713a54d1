import type { Backend, Tenant } from '../../src/backend/types';
import { pack } from '../../src/backend/keys';
import { DurableQueue } from '../../src/runtime/durable-queue';
import { ServerKeys } from '../../src/runtime/server-keys';
import { FIRE_BATCH, FIRE_BYTES, TimerStore } from '../../src/timers/timer-store';
import { TimerKeys } from '../../src/timers/timer-keys';
import { runtimeBackends } from '../runtime/backends';

test('timer keys are the packed tuples, prefix and tail packed apart', () => {
  const keys = new ServerKeys(['alarm', 'k1']);
  const t = TimerKeys.of(keys);
  expect(TimerKeys.of(keys)).toBe(t);
  expect(t.record('a/b')).toEqual(pack(['alarm', 'k1', 't', 'k', 'a/b']));
  expect(t.indexKey(1_700_000_000_123, 'x')).toEqual(pack(['alarm', 'k1', 't', 'd', 1_700_000_000_123, 'x']));
  expect(t.indexFrom(5)).toEqual(pack(['alarm', 'k1', 't', 'd', 5]));
  expect(t.idle).toEqual(pack(['alarm', 'k1', 't', 'i']));
  expect(t.ofIndex(t.indexKey(42, 'é'))).toEqual({ due: 42, key: 'é' });
  expect(t.ofRecord(t.record('k'))).toBe('k');
});

describe.each(runtimeBackends)('TimerStore.fire on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  let n = 0;
  const keys = new ServerKeys(['alarm', 'store']);

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['timer-store', String(++n)]);
  });
  afterEach(() => cleanup());

  const setMany = (timers: Array<[string, number, unknown]>) =>
    tenant.transact(async (tx) => {
      for (const [key, due, msg] of timers) await TimerStore.set(tx, keys, key, due, msg);
    });
  const queued = () =>
    tenant.read(async (tx) => (await DurableQueue.peekMany(tx, keys, 10_000)).map((i) => i.item.msg));
  const pending = () => tenant.read((tx) => TimerStore.list(tx, keys));
  const fire = (now: number, budget = { bytes: 0 }) =>
    tenant.transact((tx) => TimerStore.fire(tx, keys, now, budget));

  test('past FIRE_BATCH due timers: a batch in due order, the next due is the first left', async () => {
    const count = FIRE_BATCH + 10;
    await setMany(
      Array.from({ length: count }, (_, i) => [`t${i}`, 1000 + i, i] as [string, number, number]),
    );
    await setMany([['later', 5000, 'later']]);
    expect(await fire(3000)).toEqual({ fired: FIRE_BATCH, next: 1000 + FIRE_BATCH });
    expect(await queued()).toEqual(Array.from({ length: FIRE_BATCH }, (_, i) => i));
    expect(await fire(3000)).toEqual({ fired: 10, next: 5000 });
    expect(await queued()).toEqual(Array.from({ length: count }, (_, i) => i));
    expect((await pending()).map((p) => p.key)).toEqual(['later']);
    expect(await fire(4999)).toEqual({ fired: 0, next: 5000 });
  });

  test('a batch the byte budget cuts short leaves the rest pending, and names the first as next', async () => {
    await setMany([
      ['a', 100, 'a'],
      ['b', 200, 'b'],
      ['c', 300, 'c'],
    ]);
    // Nearly spent by other servers of the same fire: the first timer is taken, then the budget is out.
    expect(await fire(1000, { bytes: FIRE_BYTES - 1 })).toEqual({ fired: 1, next: 200 });
    expect(await queued()).toEqual(['a']);
    expect((await pending()).map((p) => [p.key, p.due])).toEqual([
      ['b', 200],
      ['c', 300],
    ]);
    expect(await fire(1000)).toEqual({ fired: 2, next: undefined });
    expect(await queued()).toEqual(['a', 'b', 'c']);
  });

  test('an index row without its record is dropped, and a replaced timer fires once, at its new due', async () => {
    await setMany([
      ['x', 100, 'x1'],
      ['y', 150, 'y'],
    ]);
    await setMany([['x', 400, 'x2']]); // replaces: the index row at 100 goes
    await tenant.transact((tx) => tx.clear(TimerKeys.of(keys).record('y'))); // an orphan index row at 150
    expect(await fire(200)).toEqual({ fired: 0, next: 400 });
    expect(await fire(400)).toEqual({ fired: 1, next: undefined });
    expect(await queued()).toEqual(['x2']);
    expect(await tenant.read((tx) => TimerStore.nextDue(tx, keys))).toBeUndefined();
  });

  test('peekDue, checkTaken, deleteTaken: due timers taken without the queue, only while unchanged', async () => {
    await setMany([
      ['a', 100, 'a'],
      ['b', 200, 'b'],
      ['c', 900, 'c'],
    ]);
    const due = await tenant.read((tx) => TimerStore.peekDue(tx, keys, 500, 10));
    expect(due.map((d) => d.item)).toEqual([
      { kind: 'cast', msg: 'a' },
      { kind: 'cast', msg: 'b' },
    ]);
    expect(await tenant.read((tx) => TimerStore.peekDue(tx, keys, 500, 1))).toHaveLength(1);
    const check = () => tenant.read((tx) => TimerStore.checkTaken(tx, keys, due));
    expect(await check()).toEqual({ unchanged: true, next: 900, idle: false, ahead: [] });
    // Read ahead: the timers past those taken, with their records, as peekDue reads them once due.
    const [first] = due;
    const ahead = await tenant.read((tx) => TimerStore.checkTaken(tx, keys, [first], 2));
    expect(ahead.unchanged).toBe(true);
    expect(ahead.ahead.map((a) => a.due)).toEqual([200, 900]);
    expect(ahead.ahead.map((a) => TimerStore.dueOf(a).item)).toEqual([
      { kind: 'cast', msg: 'b' },
      { kind: 'cast', msg: 'c' },
    ]);
    expect(TimerStore.dueOf(ahead.ahead[0])).toEqual(due[1]);
    // Replaced with the same due and a new message: the index alone would not tell.
    await setMany([['b', 200, 'b2']]);
    expect((await check()).unchanged).toBe(false);
    const again = await tenant.read((tx) => TimerStore.peekDue(tx, keys, 500, 10));
    await tenant.transact((tx) => TimerStore.deleteTaken(tx, keys, again));
    expect((await pending()).map((p) => p.key)).toEqual(['c']);
    expect(await queued()).toEqual([]);
    expect((await tenant.read((tx) => TimerStore.checkTaken(tx, keys, again))).unchanged).toBe(false);
  });

  test('peekDue offers nothing while the idle timeout is due too (firing has its rules)', async () => {
    await setMany([['a', 100, 'a']]);
    await tenant.transact((tx) => TimerStore.armIdle(tx, keys, 300));
    expect(await tenant.read((tx) => TimerStore.peekDue(tx, keys, 200, 10))).toHaveLength(1);
    expect(await tenant.read((tx) => TimerStore.peekDue(tx, keys, 300, 10))).toEqual([]);
  });
});
