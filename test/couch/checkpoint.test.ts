import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ChangesFollower,
  CheckpointStore,
  OnChange,
  follow,
  type ChangeRow,
  type DbTarget,
} from '../../src/couch';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend, Tenant } from '../../src/backend/types';
import { Init } from '../../src/decorators';
import { ok } from '../../src/returns';
import { describeTargets } from '../helpers/couch/targets';
import { startRecorded, waitFor, writeDocs } from '../helpers/couch/follower-kit';

interface IndexState {
  ids: string[];
  byType: Map<string, number>;
  since: Date;
}

interface IndexArg {
  db: DbTarget;
  tenant: Tenant;
  key?: string;
}

@ChangesFollower({ name: 'checkpointed-indexer' })
class CheckpointedIndexer {
  @Init() init(arg: IndexArg) {
    const fresh: IndexState = { ids: [], byType: new Map(), since: new Date(0) };
    return follow(arg.db, fresh, {
      includeDocs: true,
      heartbeat: 300,
      checkpoint: { tenant: arg.tenant, key: arg.key },
    });
  }
  @OnChange() change(row: ChangeRow, s: IndexState) {
    const type = String(row.doc?.kind ?? 'none');
    const byType = new Map(s.byType).set(type, (s.byType.get(type) ?? 0) + 1);
    return ok({ ...s, byType, ids: [...s.ids, row.id] });
  }
}

describeTargets('checkpoints', (target) => {
  let dir: string;
  let backends: Backend[];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-couch-checkpoint-'));
  });
  beforeEach(() => {
    backends = [];
  });
  afterEach(async () => {
    await Promise.all(backends.map((b) => b.close()));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const open = async (spec: string) => {
    const b = await openBackend(spec);
    backends.push(b);
    return b;
  };

  it.each([['memory:'], ['sqlite']])(
    'stores seq and state after each batch (%s); a restarted follower resumes there, nothing replayed or lost',
    async (kind) => {
      const t = target();
      const db = await t.createDb('checkpoint');
      const spec = kind === 'sqlite' ? `sqlite:${path.join(dir, `cp-${Date.now()}.sqlite`)}` : kind;
      const backend = await open(spec);
      const tenant = await backend.openTenant(['couch', 'indexer']);
      await writeDocs(t.nano.use(db), 'a', 5, (i) => ({ kind: i % 2 ? 'odd' : 'even' }));

      const first = await startRecorded<IndexState>(CheckpointedIndexer, { db: t.dbTarget(db), tenant });
      await first.events.waitCount('change', 5);
      await waitFor(() => first.events.count('checkpointed') > 0, 'a checkpoint');
      const stored = await new CheckpointStore(tenant, 'checkpointed-indexer').load<IndexState>();
      expect(stored?.seq).toBe(first.ref.lastSeq);
      expect(stored?.state.ids).toEqual(['a00000', 'a00001', 'a00002', 'a00003', 'a00004']);
      expect(stored?.state.byType).toEqual(
        new Map([
          ['even', 3],
          ['odd', 2],
        ]),
      );
      expect(stored?.state.since).toBeInstanceOf(Date);
      await first.ref.stop();

      await writeDocs(t.nano.use(db), 'b', 3, () => ({ kind: 'late' }));
      const before = t.proxy.changesRequests.length;
      const second = await startRecorded<IndexState>(CheckpointedIndexer, { db: t.dbTarget(db), tenant });
      await second.events.waitCount('change', 3);
      const s = await second.ref.readState();
      expect(s.ids).toEqual(['a00000', 'a00001', 'a00002', 'a00003', 'a00004', 'b00000', 'b00001', 'b00002']);
      expect(s.byType).toEqual(
        new Map([
          ['even', 3],
          ['odd', 2],
          ['late', 3],
        ]),
      );
      expect(t.proxy.changesRequests[before].url.searchParams.get('since')).toBe(String(stored?.seq));
      await second.ref.stop();
    },
  );

  it('a checkpoint is written while running, so a follower that never stopped cleanly resumes too', async () => {
    const t = target();
    const db = await t.createDb('checkpoint-crash');
    const tenant = await (await open('memory:')).openTenant(['couch']);
    await writeDocs(t.nano.use(db), 'a', 4);
    const first = await startRecorded<IndexState>(CheckpointedIndexer, {
      db: t.dbTarget(db),
      tenant,
      key: 'crashy',
    });
    await first.events.waitCount('change', 4);
    await waitFor(
      async () => (await new CheckpointStore(tenant, 'crashy').load())?.seq === first.ref.lastSeq,
      'the checkpoint',
    );
    // "crash": the connection dies and this follower is abandoned without a clean stop
    t.proxy.stall();
    const second = await startRecorded<IndexState>(CheckpointedIndexer, {
      db: t.dbTarget(db),
      tenant,
      key: 'crashy',
    });
    await writeDocs(t.nano.use(db), 'b', 1);
    await second.events.waitCount('change', 1);
    expect((await second.ref.readState()).ids).toEqual(['a00000', 'a00001', 'a00002', 'a00003', 'b00000']);
    await first.ref.stop();
    await second.ref.stop();
    t.proxy.cutAll();
  });

  it('keys keep followers apart in one tenant; without a checkpoint the follower starts at since', async () => {
    const t = target();
    const db = await t.createDb('checkpoint-keys');
    const tenant = await (await open('memory:')).openTenant(['couch']);
    await writeDocs(t.nano.use(db), 'a', 2);
    const one = await startRecorded<IndexState>(CheckpointedIndexer, {
      db: t.dbTarget(db),
      tenant,
      key: 'one',
    });
    await one.events.waitCount('checkpointed', 1);
    await one.ref.stop();
    expect(await new CheckpointStore(tenant, 'two').load()).toBeUndefined();
    const two = await startRecorded<IndexState>(CheckpointedIndexer, {
      db: t.dbTarget(db),
      tenant,
      key: 'two',
    });
    await two.events.waitCount('change', 2);
    expect((await two.ref.readState()).ids).toEqual(['a00000', 'a00001']);
    await two.ref.stop();
  });

  it('a state too big for one value is split across keys and read back whole', async () => {
    const tenant = await (await open('memory:')).openTenant(['big']);
    const store = new CheckpointStore(tenant, 'big');
    const state = { blob: 'x'.repeat(250_000), list: Array.from({ length: 1000 }, (_, i) => i) };
    await store.save('42-abc', state);
    expect(await store.load()).toEqual({ seq: '42-abc', state, version: 1 });
    await store.save(43, { small: true });
    expect(await store.load()).toEqual({ seq: 43, state: { small: true }, version: 1 });
    await store.clear();
    expect(await store.load()).toBeUndefined();
  });

  it('a checkpoint goes through the same checks as a durable state: what would not come back as it was is refused, never flattened (issue #12)', async () => {
    const tenant = await (await open('memory:')).openTenant(['checked']);
    const store = new CheckpointStore(tenant, 'checked');
    class Point {
      constructor(readonly x: number) {}
    }
    await expect(store.save(1, { p: new Point(1) })).rejects.toMatchObject({
      code: 'NOT_SERIALIZABLE',
      message: expect.stringContaining('Point'),
    });
    await expect(store.save(1, { s: 'a\uD800b' })).rejects.toMatchObject({ code: 'NOT_SERIALIZABLE' });
    expect(await store.load()).toBeUndefined(); // nothing was written
    const state = {
      m: new Map<unknown, unknown>([
        ['a', 1],
        [2, 'b'],
      ]),
      s: new Set([1]),
      d: new Date(5),
      b: 10n ** 30n,
      u: undefined,
      z: -0,
    };
    await store.save('7-x', state);
    const back = await store.load<typeof state>();
    expect(back?.state).toEqual(state);
    expect(Object.is(back?.state.z, -0)).toBe(true); // the codec keeps -0, as it does for states
  });

  it('a state that cannot be stored stops the follower with NOT_SERIALIZABLE', async () => {
    const t = target();
    const db = await t.createDb('checkpoint-bad');
    const tenant = await (await open('memory:')).openTenant(['couch']);
    await writeDocs(t.nano.use(db), 'a', 1);

    @ChangesFollower()
    class Unstorable {
      @Init() init(arg: IndexArg) {
        return follow(
          arg.db,
          { fn: null as unknown },
          { heartbeat: 300, checkpoint: { tenant: arg.tenant } },
        );
      }
      @OnChange() change(_row: ChangeRow, s: { fn: unknown }) {
        return ok({ ...s, fn: Symbol('not storable') });
      }
    }
    const { ref, events } = await startRecorded(Unstorable, { db: t.dbTarget(db), tenant });
    expect(await ref.done).toMatchObject({ code: 'NOT_SERIALIZABLE' });
    expect(events.count('checkpoint-failed')).toBe(1);
  });
});
