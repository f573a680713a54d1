import 'reflect-metadata';
import { firstValueFrom, filter } from 'rxjs';
import { pack } from '../../src/backend/keys';
import type { Backend, Tenant } from '../../src/backend/types';
import { DurableServer, Init, OnCall, OnCast, OnUpgrade } from '../../src/decorators';

import { StateStore } from '../../src/codec/state-codec';
import { decodeStateVersion } from '../../src/kernel/upgrade';
import { readIndexRecord } from '../../src/ops/server-index';
import { noreply, ok, reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import { runtimeBackends, waitFor } from './backends';

/** Version 1: a plain count. */
@DurableServer({ name: 'ver' })
class V1 {
  @Init() init() {
    return ok({ n: 0 });
  }
  @OnCast('add') add(_m: unknown, s: { n: number }) {
    return noreply({ n: s.n + 1 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
}

export const upgrades: Array<[unknown, number]> = [];

/** Version 2: the count is renamed and a history added; @OnUpgrade maps the old shape. */
@DurableServer({ name: 'ver', version: 2 })
class V2 {
  @Init() init() {
    return ok({ count: 0, log: [] as string[] });
  }
  @OnUpgrade() upgrade(old: { n: number }, from: number) {
    upgrades.push([old, from]);
    return { count: old.n, log: [`from v${from}`] };
  }
  @OnCast('add') add(_m: unknown, s: { count: number; log: string[] }) {
    return noreply({ ...s, count: s.count + 1 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
}

@DurableServer({ name: 'ver', version: 2 })
class V2Broken {
  @Init() init() {
    return ok({});
  }
  @OnUpgrade() upgrade() {
    throw new Error('cannot read the old shape');
  }
}

@DurableServer({ name: 'ver', version: 3 })
class V3Async {
  @Init() init() {
    return ok({});
  }
  @OnUpgrade() async upgrade(old: unknown) {
    return old;
  }
}

/** Version 2 without @OnUpgrade: the state is kept as it is. */
@DurableServer({ name: 'ver', version: 2 })
class V2Same {
  @Init() init() {
    return ok({});
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
}

describe.each(runtimeBackends)('state versions on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  const TUID = ['dgen_server', 'ver'];
  const storedVersion = async () =>
    decodeStateVersion(await tenant.read((tx) => tx.get(pack([...TUID, 's', 'n']))));

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['versions']);
    upgrades.length = 0;
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  test('a newer class upgrades the stored state when it starts, once, and records its version', async () => {
    const v1 = await Runtime.start(V1, undefined, { tenant });
    await v1.cast('add');
    await v1.cast('add');
    await waitFor(async () => (await v1.queueLength()) === 0);
    await v1.stop();
    expect(await storedVersion()).toBe(1);
    expect((await tenant.read((tx) => readIndexRecord(tx, TUID)))?.version).toBe(1);
    const v2 = await Runtime.start(V2, undefined, { tenant });
    expect(await v2.readState()).toEqual({ count: 2, log: ['from v1'] });
    expect(upgrades).toEqual([[{ n: 2 }, 1]]);
    expect(await storedVersion()).toBe(2);
    expect((await tenant.read((tx) => readIndexRecord(tx, TUID)))?.version).toBe(2);
    await v2.cast('add');
    expect(await v2.call('get')).toEqual({ count: 3, log: ['from v1'] });
    await v2.stop();
    await Runtime.start(V2, undefined, { tenant }); // current already: no second upgrade
    expect(upgrades.length).toBe(1);
  });

  test('an older class never touches a newer state: start fails with VERSION_AHEAD', async () => {
    await (await Runtime.start(V2, undefined, { tenant })).stop();
    await expect(Runtime.start(V1, undefined, { tenant })).rejects.toMatchObject({
      code: 'VERSION_AHEAD',
      stored: 2,
      running: 1,
    });
    await expect(Runtime.start(V1, undefined, { tenant, reset: true })).rejects.toMatchObject({
      code: 'VERSION_AHEAD',
    });
    expect(await storedVersion()).toBe(2);
    const v2 = await Runtime.start(V2, undefined, { tenant });
    expect(await v2.readState()).toEqual({ count: 0, log: [] });
  });

  test('a running older consumer steps aside when a newer process upgrades; its queued messages are kept', async () => {
    const v1 = await Runtime.start(V1, undefined, { tenant });
    await v1.cast('add');
    await waitFor(async () => (await v1.queueLength()) === 0);
    const ahead = firstValueFrom(v1.events$.pipe(filter((e) => e.type === 'version-ahead')));
    const v2 = await Runtime.start(V2, undefined, { tenant, consume: false });
    await v1.cast('add').catch(() => undefined); // wakes v1's consumer: it finds a newer state
    expect(await ahead).toEqual({ type: 'version-ahead', stored: 2, running: 1 });
    expect(await v1.done).toMatchObject({ code: 'VERSION_AHEAD' });
    expect(await v2.queueLength()).toBe(1); // not handled by v1, not lost
    const consumer = await Runtime.start(V2, undefined, { tenant, name: 'v2-consumer' });
    await waitFor(async () => (await consumer.queueLength()) === 0);
    expect(await consumer.call('get')).toEqual({ count: 2, log: ['from v1'] });
  });

  // The cause of a rolling upgrade's old consumer that never stepped aside (issue #13): with its queue
  // empty it only waited for pushes and never looked at the state, so the upgrade's wake-up found nothing
  // to handle and it went back to waiting, holding the consumer lease, for as long as nobody cast.
  test('an idle older consumer (queue empty, state cached) steps aside when a newer process upgrades, with no message sent', async () => {
    const v1 = await Runtime.start(V1, undefined, { tenant });
    await v1.cast('add');
    await waitFor(async () => (await v1.queueLength()) === 0);
    expect(await v1.call('get')).toEqual({ n: 1 }); // handled: its state is cached at the stored version
    const ahead = firstValueFrom(v1.events$.pipe(filter((e) => e.type === 'version-ahead')));
    const v2 = await Runtime.start(V2, undefined, { tenant, consume: false, name: 'v2-client' });
    expect(await storedVersion()).toBe(2);
    expect(await ahead).toEqual({ type: 'version-ahead', stored: 2, running: 1 });
    expect(await v1.done).toMatchObject({ code: 'VERSION_AHEAD' });
    await v2.cast('add'); // queued for a consumer of version 2, not handled by the old one
    expect(await v2.queueLength()).toBe(1);
    const consumer = await Runtime.start(V2, undefined, { tenant, name: 'v2-consumer' });
    await waitFor(async () => (await consumer.queueLength()) === 0);
    expect(await consumer.call('get')).toEqual({ count: 2, log: ['from v1'] });
  });

  test('an upgrade that throws (or is async) fails the start with UPGRADE_FAILED and leaves the state as it was', async () => {
    const v1 = await Runtime.start(V1, undefined, { tenant });
    await v1.cast('add');
    await waitFor(async () => (await v1.queueLength()) === 0);
    await v1.stop();
    const err = await Runtime.start(V2Broken, undefined, { tenant }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPGRADE_FAILED' });
    expect((err as Error).message).toMatch(
      /V2Broken\.upgrade threw .* from version 1 to 2: cannot read the old shape/,
    );
    await expect(Runtime.start(V3Async, undefined, { tenant })).rejects.toMatchObject({
      code: 'UPGRADE_FAILED',
      message: expect.stringMatching(/returned a promise/),
    });
    expect(await storedVersion()).toBe(1);
    expect((await tenant.read((tx) => readIndexRecord(tx, TUID)))?.version).toBe(1);
    const again = await Runtime.start(V1, undefined, { tenant });
    expect(await again.call('get')).toEqual({ n: 1 });
  });

  test('a state found older while running (written under this process) is upgraded as read and written back with its version', async () => {
    const v2 = await Runtime.start(V2, undefined, { tenant });
    await v2.cast('add');
    await waitFor(async () => (await v2.queueLength()) === 0);
    // An older writer's state, as a follower's checkpoint or a restore from a backup would leave it.
    await tenant.transact((tx) => {
      new StateStore([...TUID, 's']).write(tx, undefined, { n: 5 });
      tx.clear(pack([...TUID, 's', 'n']));
    });
    expect(await storedVersion()).toBe(1);
    await v2.cast('add');
    await waitFor(async () => (await v2.queueLength()) === 0);
    expect(await v2.call('get')).toEqual({ count: 6, log: ['from v1'] });
    expect(await storedVersion()).toBe(2);
  });

  test('a version bump without @OnUpgrade keeps the state', async () => {
    const v1 = await Runtime.start(V1, undefined, { tenant });
    await v1.cast('add');
    await waitFor(async () => (await v1.queueLength()) === 0);
    await v1.stop();
    const v2 = await Runtime.start(V2Same, undefined, { tenant });
    expect(await v2.call('get')).toEqual({ n: 1 });
    expect(await storedVersion()).toBe(2);
  });
});

describe('state version definitions', () => {
  test('a version is a positive integer', () => {
    for (const version of [0, -1, 1.5, '2', NaN, Infinity])
      expect(() => DurableServer({ name: 'x', version } as never)).toThrow(
        expect.objectContaining({ code: 'BAD_ARGUMENT' }),
      );
  });
  test('one @OnUpgrade per class, on a method', () => {
    expect(() => {
      @DurableServer({ version: 2 })
      class Twice {
        @OnUpgrade() a(s: unknown) {
          return s;
        }
        @OnUpgrade() b(s: unknown) {
          return s;
        }
      }
      return Twice;
    }).toThrow(expect.objectContaining({ code: 'BAD_DEFINITION' }));
  });
});
