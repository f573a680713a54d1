import 'reflect-metadata';
import { openBackend } from '../../src/backend/open-backend';
import type { Tenant } from '../../src/backend/types';
import {
  ChangesFollower,
  CheckpointStore,
  OnChange,
  follow,
  type ChangeRow,
  type DbTarget,
} from '../../src/couch';
import { Init, OnCall, OnUpgrade } from '../../src/decorators';
import { Runtime } from '../../src/facade/runtime';
import { ok, reply } from '../../src/returns';
import { describeTargets } from '../helpers/couch/targets';
import { waitFor, writeDocs } from '../helpers/couch/follower-kit';

interface Arg {
  db: DbTarget;
  tenant: Tenant;
}

@ChangesFollower({ name: 'counting' })
class CountV1 {
  @Init() init(a: Arg) {
    return follow(a.db, 0 as unknown, { heartbeat: 300, checkpoint: { tenant: a.tenant } });
  }
  @OnChange() change(_row: ChangeRow, n: number) {
    return ok(n + 1);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
}

@ChangesFollower({ name: 'counting', version: 2 })
class CountV2 {
  @Init() init(a: Arg) {
    return follow(a.db, { rows: 0 } as unknown, { heartbeat: 300, checkpoint: { tenant: a.tenant } });
  }
  @OnUpgrade() upgrade(old: number, from: number) {
    return { rows: old, upgradedFrom: from };
  }
  @OnChange() change(_row: ChangeRow, s: { rows: number }) {
    return ok({ ...s, rows: s.rows + 1 });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
}

describeTargets('follower state versions (issue #13)', (target) => {
  afterEach(() => Runtime.stopAll());

  it('a checkpoint of an older version is upgraded by @OnUpgrade; an older follower then steps aside with VERSION_AHEAD', async () => {
    const t = target();
    const db = await t.createDb('versions');
    const tenant = await (await openBackend('memory:')).openTenant(['v']);
    await writeDocs(t.nano.use(db), 'a', 2);
    const v1 = await Runtime.start(CountV1, { db: t.dbTarget(db), tenant });
    await waitFor(async () => (await v1.call('get')) === 2, 'two rows');
    await v1.stop();
    expect((await new CheckpointStore(tenant, 'counting').load())?.version).toBe(1);

    const v2 = await Runtime.start(CountV2, { db: t.dbTarget(db), tenant });
    expect(await v2.call('get')).toEqual({ rows: 2, upgradedFrom: 1 }); // resumed, upgraded, nothing replayed
    await writeDocs(t.nano.use(db), 'b', 1);
    await waitFor(async () => ((await v2.call('get')) as { rows: number }).rows === 3, 'the third row');
    await waitFor(
      async () => (await new CheckpointStore(tenant, 'counting').load())?.version === 2,
      'the upgraded checkpoint',
    );
    await v2.stop();

    await expect(Runtime.start(CountV1, { db: t.dbTarget(db), tenant })).rejects.toMatchObject({
      code: 'VERSION_AHEAD',
    });
    // and the newer checkpoint is never written over by an old one
    await expect(new CheckpointStore(tenant, 'counting', 1).save(9, 9)).rejects.toMatchObject({
      code: 'VERSION_AHEAD',
    });
    expect((await new CheckpointStore(tenant, 'counting').load())?.state).toMatchObject({ rows: 3 });
  });

  it('@ChangesFollower({ version }) takes a positive integer', () => {
    expect(() => ChangesFollower({ version: 0 })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    expect(() => ChangesFollower({ version: 1.5 })).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    );
  });
});
