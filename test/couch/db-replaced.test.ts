import 'reflect-metadata';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { replacedReason, UNREACHABLE } from '../../src/couch/db-replaced';
import { resolveDb } from '../../src/couch/db-target';
import { CheckpointStore, retry, type FeedError } from '../../src/couch';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend, Tenant } from '../../src/backend/types';
import { stop } from '../../src/returns';
import { describeTargets, type CouchTarget } from '../helpers/couch/targets';
import {
  BareProbe,
  Probe,
  startProbe,
  waitFor,
  writeDocs,
  type EventLog,
  type ProbeState,
} from '../helpers/couch/follower-kit';

/** Deletes the database and creates it again under the same name, empty. */
async function recreate(t: CouchTarget, db: string): Promise<void> {
  await t.nano.db.destroy(db);
  await t.nano.db.create(db);
}

const replacedErrors = (events: EventLog) =>
  events
    .of('feed-error')
    .map((e) => e.error as FeedError)
    .filter((e) => e.kind === 'replaced');

/** Follows `db` with a checkpoint until it has handled `n` rows and stored them, then stops it. */
async function followAndStop(t: CouchTarget, db: string, tenant: Tenant, n: number): Promise<void> {
  const { ref, events } = await startProbe(BareProbe, {
    db: t.dbTarget(db),
    options: { heartbeat: 500, checkpoint: { tenant, key: db } },
  });
  await events.waitCount('change', n);
  await waitFor(
    async () => (await new CheckpointStore(tenant, db).load())?.seq === ref.lastSeq,
    'checkpoint',
  );
  await ref.stop();
}

describeTargets('a checkpoint from a database deleted and created again (issue #11, point 9)', (target) => {
  let backend: Backend;
  let tenant: Tenant;
  beforeAll(async () => {
    backend = await openBackend('memory:');
    tenant = await backend.openTenant(['couch', 'replaced']);
  });
  afterAll(async () => {
    await backend.close();
  });

  it('with fewer changes than before: starts over from the beginning and reports it (no @OnError)', async () => {
    const t = target();
    const db = await t.createDb('replaced-small');
    await writeDocs(t.nano.use(db), 'a', 5);
    await followAndStop(t, db, tenant, 5);

    await recreate(t, db);
    await writeDocs(t.nano.use(db), 'b', 2, () => ({ generation: 2 }));
    const { ref, events } = await startProbe(BareProbe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500, checkpoint: { tenant, key: db } },
    });
    await events.waitCount('change', 2);
    expect((await ref.readState()).ids).toEqual(['b00000', 'b00001']); // @Init's state, not the old one
    expect(replacedErrors(events)).toHaveLength(1);
    expect(replacedErrors(events)[0]).toMatchObject({ code: 'FEED_FAILED', kind: 'replaced' });
    expect(events.of('feed-error')).toHaveLength(1);
    await waitFor(
      async () => (await new CheckpointStore(tenant, db).load())?.seq === ref.lastSeq,
      'checkpoint',
    );
    expect((await new CheckpointStore(tenant, db).load<ProbeState>())?.state.ids).toEqual([
      'b00000',
      'b00001',
    ]);
    await ref.stop();
  });

  it('with more changes than before: the last handled revision is unknown to it, so it starts over too', async () => {
    const t = target();
    const db = await t.createDb('replaced-big');
    await writeDocs(t.nano.use(db), 'a', 3);
    await followAndStop(t, db, tenant, 3);

    await recreate(t, db);
    await writeDocs(t.nano.use(db), 'a', 8, () => ({ generation: 2 }));
    const { ref, events } = await startProbe(BareProbe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500, checkpoint: { tenant, key: db } },
    });
    await events.waitCount('change', 8);
    expect((await ref.readState()).ids).toEqual(Array.from({ length: 8 }, (_, i) => `a0000${i}`));
    expect(replacedErrors(events)).toHaveLength(1);
    expect(replacedErrors(events)[0].message).toContain('a00002');
    await ref.stop();
  });

  it('@OnError may stop instead: the follower stops and the checkpoint is left as it was', async () => {
    const t = target();
    const db = await t.createDb('replaced-stop');
    await writeDocs(t.nano.use(db), 'a', 4);
    await followAndStop(t, db, tenant, 4);
    const before = await new CheckpointStore(tenant, db).load<ProbeState>();

    await recreate(t, db);
    await writeDocs(t.nano.use(db), 'b', 1, () => ({ generation: 2 }));
    const seen: FeedError[] = [];
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500, checkpoint: { tenant, key: db } },
      onError: (err: unknown, s: ProbeState) => {
        seen.push(err as FeedError);
        return (err as FeedError).kind === 'replaced' ? stop('replaced', s) : retry(s);
      },
    });
    expect(await ref.done).toBe('replaced');
    expect(seen.map((e) => e.kind)).toEqual(['replaced']);
    expect(events.count('change')).toBe(0);
    expect(await new CheckpointStore(tenant, db).load()).toEqual(before);
  });

  it('the same database, resumed: no report, nothing replayed', async () => {
    const t = target();
    const db = await t.createDb('replaced-not');
    await writeDocs(t.nano.use(db), 'a', 3);
    await followAndStop(t, db, tenant, 3);
    await writeDocs(t.nano.use(db), 'b', 1);
    const { ref, events } = await startProbe(BareProbe, {
      db: t.dbTarget(db),
      options: { heartbeat: 500, checkpoint: { tenant, key: db } },
    });
    await events.waitCount('change', 1);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'a00002', 'b00000']);
    expect(events.count('feed-error')).toBe(0);
    await ref.stop();
  });

  it('a since given by @Init is never reported: starting over would not change it', async () => {
    const t = target();
    const db = await t.createDb('replaced-since');
    await writeDocs(t.nano.use(db), 'a', 2);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 2000, jitterMs: 10, since: 1000 }, // ahead of update_seq
    });
    await events.waitCount('connected', 1);
    t.proxy.cutAll();
    await events.waitCount('connected', 2);
    t.proxy.cutAll();
    await events.waitCount('connected', 3);
    expect(events.count('feed-error')).toBe(0);
    expect(events.of('reconnecting').every((e) => e.since === 1000)).toBe(true);
    await ref.stop();
  });

  it('a running follower whose database is deleted and created again starts over on it', async () => {
    const t = target();
    const db = await t.createDb('replaced-live');
    await writeDocs(t.nano.use(db), 'a', 4);
    const { ref, events } = await startProbe(Probe, {
      db: t.dbTarget(db),
      options: { heartbeat: 300, jitterMs: 10 },
      onError: (_err: unknown, s: ProbeState) => retry(s, 50),
    });
    await events.waitCount('change', 4);
    await recreate(t, db);
    t.proxy.cutAll(); // PouchDB Server does not end a live feed when its database goes
    await writeDocs(t.nano.use(db), 'b', 2, () => ({ generation: 2 }));
    await events.waitCount('change', 6);
    expect((await ref.readState()).ids).toEqual(['b00000', 'b00001']);
    expect(replacedErrors(events)).toHaveLength(1);
    await ref.stop();
  });
});

describe('replacedReason against a server that cannot tell', () => {
  let server: http.Server;
  let base: string;
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  beforeAll(async () => {
    server = http.createServer((req, res) => answer(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const db = () => resolveDb(`${base}/db`);
  const mark = { id: 'a', rev: '1-x' };

  it('answers: behind update_seq, unknown revision, or same database', async () => {
    answer = (req, res) => res.end(req.method === 'GET' ? '{"update_seq":3}' : '{"a":{"missing":["1-x"]}}');
    expect(await replacedReason(db(), 5, undefined, 1000)).toContain('update_seq 3');
    expect(await replacedReason(db(), 2, mark, 1000)).toContain('1-x');
    answer = (req, res) => res.end(req.method === 'GET' ? '{"update_seq":3}' : '{}');
    expect(await replacedReason(db(), 2, mark, 1000)).toBeUndefined();
  });

  it('a status other than 200, an answer that is not JSON or larger than 1 MiB: cannot tell', async () => {
    answer = (_req, res) => {
      res.statusCode = 403;
      res.end('{"error":"forbidden"}');
    };
    expect(await replacedReason(db(), 5, mark, 1000)).toBeUndefined();
    answer = (_req, res) => res.end('<html>');
    expect(await replacedReason(db(), 5, mark, 1000)).toBeUndefined();
    answer = (_req, res) => {
      res.write('{"update_seq":0,"junk":"');
      for (let i = 0; i < 40; i++) res.write('x'.repeat(64 * 1024));
      res.end('"}');
    };
    expect(await replacedReason(db(), 5, undefined, 1000)).toBeUndefined();
  });

  it('no connection, or no answer in time: UNREACHABLE (asked again before the next connection)', async () => {
    answer = () => undefined; // never answers
    expect(await replacedReason(db(), 5, undefined, 100)).toBe(UNREACHABLE);
    expect(await replacedReason(resolveDb('http://127.0.0.1:1/db'), 5, undefined, 1000)).toBe(UNREACHABLE);
  });
});
