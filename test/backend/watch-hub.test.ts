/**
 * WatchHub on its own: which watches a commit's cleared ranges reach ([start, end), by key order),
 * and that rechecks and cancellation keep its key index consistent.
 */
import { WatchHub } from '../../src/backend/common/watch-hub';

const b = (s: string) => Buffer.from(s);
const hex = (s: string) => b(s).toString('hex');

/** Arms a watch on `key` with `baseline`; returns its `changed` promise settled state probe. */
function watchOn(hub: WatchHub, key: string, baseline: string | undefined) {
  const { watch, arm } = hub.pending(b(key));
  arm(baseline === undefined ? undefined : b(baseline));
  let state: boolean | 'pending' = 'pending';
  void watch.changed.then((v) => (state = v));
  return { watch, state: () => state };
}

const tick = () => new Promise((r) => setImmediate(r));
const nothing = () => undefined;

describe('WatchHub', () => {
  test('a cleared range reaches a key at its start, not one at its end (end exclusive)', async () => {
    const hub = new WatchHub();
    const before = watchOn(hub, 'a', 'v');
    const atStart = watchOn(hub, 'b', 'v');
    const inside = watchOn(hub, 'b\x00', 'v');
    const lastInside = watchOn(hub, 'bz', 'v');
    const atEnd = watchOn(hub, 'c', 'v');
    const after = watchOn(hub, 'd', 'v');
    hub.notify([], [[b('b'), b('c')]], nothing);
    await tick();
    expect([before, atStart, inside, lastInside, atEnd, after].map((w) => w.state())).toEqual([
      'pending',
      true,
      true,
      true,
      'pending',
      'pending',
    ]);
    expect(hub.size).toBe(3);
  });

  test('several ranges, an empty one, and keys written directly', async () => {
    const hub = new WatchHub();
    const w = ['a', 'c', 'e', 'g', 'i'].map((k) => watchOn(hub, k, 'v'));
    hub.notify(
      [hex('i'), hex('zz')],
      [
        [b('b'), b('d')],
        [b('f'), b('f')],
        [b('g'), b('g\x00')],
      ],
      nothing,
    );
    await tick();
    expect(w.map((x) => x.state())).toEqual(['pending', true, 'pending', true, true]);
    expect(hub.size).toBe(2);
  });

  test('a range over keys whose value is unchanged fires nothing', async () => {
    const hub = new WatchHub();
    const w = watchOn(hub, 'k', 'same');
    hub.notify([], [[b(''), b('\xff')]], () => b('same'));
    await tick();
    expect(w.state()).toBe('pending');
    hub.notify([hex('k')], [], nothing);
    await tick();
    expect(w.state()).toBe(true);
    expect(hub.size).toBe(0);
  });

  test('cancel and recheck keep the key index consistent', async () => {
    const hub = new WatchHub();
    const keys = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const watches = keys.map((k) => watchOn(hub, k, 'v'));
    for (let i = 0; i < 50; i += 2) watches[i].watch.cancel();
    expect(hub.size).toBe(25);
    // Every remaining key changed except k01.
    hub.recheck((ks) => new Map(ks.map((k) => [k.toString('hex'), b(k.toString() === 'k01' ? 'v' : 'x')])));
    await tick();
    expect(watches.map((w) => w.state())).toEqual(
      keys.map((_, i) => (i % 2 === 0 ? false : i === 1 ? 'pending' : true)),
    );
    expect(hub.size).toBe(1);
    // A new watch on a key that fired, and the range finds both.
    const again = watchOn(hub, 'k03', 'v');
    hub.notify([], [[b('k00'), b('k04')]], nothing);
    await tick();
    expect([watches[1].state(), again.state()]).toEqual([true, true]);
    expect(hub.size).toBe(0);
  });

  test('cancelAll resolves every watch false and empties the hub', async () => {
    const hub = new WatchHub();
    const w = [watchOn(hub, 'a', 'v'), watchOn(hub, 'a', 'v'), watchOn(hub, 'b', undefined)];
    hub.cancelAll();
    w[0].watch.cancel();
    await tick();
    expect(w.map((x) => x.state())).toEqual([false, false, false]);
    expect(hub.size).toBe(0);
    hub.notify([hex('a')], [[b('a'), b('c')]], () => b('new'));
  });

  test('keys left without watches stay correct through re-arming and the pass that drops them', async () => {
    const hub = new WatchHub();
    const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    for (let round = 0; round < 3; round++) {
      // every key watched, then all but every tenth cancelled (leaving many keys without watches)
      const watches = keys.map((k) => watchOn(hub, k, 'v'));
      expect(hub.size).toBe(keys.length);
      watches.forEach((w, i) => i % 10 !== 0 && w.watch.cancel());
      expect(hub.size).toBe(keys.length / 10);
      hub.notify([], [[b('k'), b('l')]], nothing); // a range over all of them: only the live ones fire
      await tick();
      expect(watches.filter((w) => w.state() === true)).toHaveLength(keys.length / 10);
      expect(hub.size).toBe(0);
    }
    // a re-armed key fires from the direct-key path too
    const again = watchOn(hub, 'k005', 'v');
    hub.notify([hex('k005')], [], () => b('w'));
    await tick();
    expect(again.state()).toBe(true);
  });

  test('a value heard for a key fires its synced watches that differ; unsynced ones are left to a read', async () => {
    const hub = new WatchHub();
    const sync = { synced: false };
    const arm = (key: string, baseline: string) => {
      const { watch, arm: armIt } = hub.pending(b(key));
      armIt(b(baseline), sync);
      let state: boolean | 'pending' = 'pending';
      void watch.changed.then((v) => (state = v));
      return () => state;
    };
    const same = arm('k', 'v');
    const differs = arm('k', 'old');
    const unsynced = watchOn(hub, 'k', 'old'); // armed without a sync: never judged from a value heard
    expect(hub.known(hex('k'), b('v'))).toBe(true); // nothing synced yet: all left to a read
    await tick();
    expect([same(), differs(), unsynced.state()]).toEqual(['pending', 'pending', 'pending']);
    sync.synced = true;
    expect(hub.known(hex('k'), b('v'))).toBe(true);
    await tick();
    expect([same(), differs(), unsynced.state()]).toEqual(['pending', true, 'pending']);
    expect(hub.known(hex('k'), undefined)).toBe(true); // absent differs from 'v'
    await tick();
    expect(same()).toBe(true);
    expect(hub.known(hex('other'), undefined)).toBe(false);
  });

  test('a fired watch tells the value that fired it (Watch.seen); an unfired one tells nothing', async () => {
    const hub = new WatchHub();
    const [written, cleared, rechecked, same] = ['a', 'b', 'c', 'd'].map((k) => watchOn(hub, k, 'v'));
    hub.notify([hex('a'), hex('b'), hex('d')], [], (k) =>
      k.equals(b('a')) ? b('new') : k.equals(b('d')) ? b('v') : undefined,
    );
    hub.recheck(
      () =>
        new Map([
          [hex('c'), b('other')],
          [hex('d'), b('v')],
        ]),
    );
    await tick();
    expect([written, cleared, rechecked, same].map((w) => w.state())).toEqual([true, true, true, 'pending']);
    expect(written.watch.seen).toEqual({ value: b('new') });
    expect(cleared.watch.seen).toEqual({ value: undefined });
    expect(rechecked.watch.seen).toEqual({ value: b('other') });
    expect(same.watch.seen).toBeUndefined();
  });
});
