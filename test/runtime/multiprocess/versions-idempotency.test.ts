/**
 * Across real processes on one SQLite file: a keyed call whose caller was killed is answered once and
 * its reply given to the callers that repeat it from new processes; and a rolling upgrade, where an old
 * and a new version consume one server: the new one upgrades, the old one steps aside with
 * VERSION_AHEAD, and every message an old-version producer sent is handled once — on a SQLite file and
 * on a PostgreSQL schema of the test run's server.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { pack } from '../../../src/backend/keys';
import type { Backend, Tenant } from '../../../src/backend/types';
import { decodeStateVersion } from '../../../src/kernel/upgrade';
import { readIndexRecord } from '../../../src/ops/server-index';
import { DurableQueue } from '../../../src/runtime/durable-queue';
import { ServerKeys } from '../../../src/runtime/server-keys';
import { openBackend } from '../../../src/backend/open-backend';
import { dropSchema, freshSchema } from '../../helpers/backend/factories';
import { openSqlite, tempDir } from '../../helpers/runtime/sqlite';
import { waitUntil, Workers, type Worker } from '../../helpers/runtime/workers';

const SCRIPT = path.join(__dirname, '../../helpers/runtime/version-worker.ts');
const TUID = ['dgen_server', 'tally'];
const keys = new ServerKeys(TUID);
const tmp = tempDir('dgen-ver-');
const workers = new Workers();
let backend: Backend;
let tenant: Tenant;

const spawn = (db: string, version: 1 | 2): Promise<Worker> =>
  workers.spawn({ db, script: SCRIPT, env: { DGEN_CLASS_VERSION: String(version) } });
const queueLength = () => tenant.read((tx) => DurableQueue.length(tx, keys));
/** How many messages a worker's ref reported handled. */
const handled = (w: Worker) =>
  w.messages.filter((m) => m.type === 'event' && (m.event as { type: string }).type === 'handled').length;

const pgUrl = process.env.DGEN_TEST_POSTGRES_URL;
const schemas: string[] = [];
/** Where the processes meet: a SQLite file, or (`postgres://…#schema`, see version-worker.ts) a schema. */
async function openStore(kind: 'sqlite' | 'postgres', name: string): Promise<string> {
  if (kind === 'sqlite') {
    const db = tmp.file(`${name}.sqlite`);
    backend = await openSqlite(db);
    return db;
  }
  const schema = freshSchema();
  schemas.push(schema);
  backend = await openBackend(pgUrl!, { postgres: { schema, poolSize: 4 } });
  return `${pgUrl}#${schema}`;
}

afterEach(async () => {
  await workers.killAll();
  await backend?.close();
});
afterAll(async () => {
  tmp.dispose();
  for (const schema of schemas) await dropSchema(pgUrl!, schema);
});

test('a keyed call whose caller was killed after it committed is handled once; callers in new processes get its reply', async () => {
  const db = tmp.file('idem.sqlite');
  backend = await openSqlite(db);
  tenant = await backend.openTenant(['mp']);
  const a = await spawn(db, 1);
  await a.rpc('start', { opts: { consume: false } });
  const lost = a.rpc('call', { msg: 'pay', key: 'pay-42', timeout: 60_000 }, 60_000).catch(() => 'killed');
  await waitUntil(queueLength, (n) => n === 1); // the call is durably queued
  await a.kill9();
  expect(await lost).toBe('killed');

  // A new client repeats the call before anyone consumes: not queued again; it waits for the first reply.
  const b = await spawn(db, 1);
  await b.rpc('start', { opts: { consume: false } });
  const waiting = b.rpc('call', { msg: 'pay', key: 'pay-42', timeout: 30_000 }, 40_000);
  await new Promise((r) => setTimeout(r, 300));
  expect(await queueLength()).toBe(1);

  const consumer = await spawn(db, 1);
  await consumer.rpc('start', {});
  const first = (await waiting) as { payment: number; pid: number };
  expect(first).toEqual({ payment: 1, pid: consumer.pid });

  // And a third process, after the reply is stored: the same reply at once, no second handling.
  const c = await spawn(db, 1);
  await c.rpc('start', { opts: { consume: false } });
  expect(await c.rpc('call', { msg: 'pay', key: 'pay-42', timeout: 10_000 })).toEqual(first);
  expect(await c.rpc('call', { msg: 'pay', key: 'pay-43', timeout: 10_000 })).toMatchObject({ payment: 2 });
  expect(await consumer.rpc('get')).toMatchObject({ paid: 2 });
  expect(
    consumer.messages.filter((m) => m.type === 'event' && (m.event as { type: string }).type === 'handled'),
  ).toHaveLength(3); // pay-42 once, pay-43, get
}, 120_000);

// The old consumers may be busy or idle (the queue drained) when the new version starts: both must step
// aside. An idle one once never did (issue #13: it looked at the state's version only with a message to
// handle); test/runtime/versions.test.ts has that case alone, on every backend.
const kinds: Array<'sqlite' | 'postgres'> = pgUrl ? ['sqlite', 'postgres'] : ['sqlite'];
test.each(kinds)(
  'a rolling upgrade on %s: the new version upgrades, the old consumer steps aside with VERSION_AHEAD, nothing is lost',
  async (kind) => {
    const db = await openStore(kind, 'upgrade');
    tenant = await backend.openTenant(['mp']);
    const N = 400;
    const old = await spawn(db, 1);
    const standBy = await spawn(db, 1);
    const producer = await spawn(db, 1);
    const next = await spawn(db, 2);
    await old.rpc('start', {});
    await standBy.rpc('start', {}); // a second old consumer: one of the two holds the consumer lease, the other stands by
    await producer.rpc('start', { opts: { consume: false } }); // an old-version client: it only publishes
    const sending = producer.rpc('castSeq', { range: [1, N / 2] }, 120_000); // the old consumers are at work
    await waitUntil(
      async () => handled(old) + handled(standBy),
      (n) => n >= 50,
      60_000,
    );

    await next.rpc('start', {}); // upgrades the stored state in the transaction of its start
    const ahead = await old.waitFor(
      (m) => m.type === 'event' && (m.event as { type: string }).type === 'version-ahead',
      30_000,
      'version-ahead',
    );
    expect(ahead.event).toEqual({ type: 'version-ahead', stored: 2, running: 1 });
    for (const w of [old, standBy])
      expect(await w.waitFor((m) => m.type === 'done', 10_000, 'done')).toMatchObject({
        code: 'VERSION_AHEAD',
      });

    // The old client keeps publishing after the upgrade: its casts are handled by the new version.
    expect(await sending).toBe(N / 2);
    expect(await producer.rpc('castSeq', { range: [N / 2 + 1, N] }, 120_000)).toBe(N / 2);
    await waitUntil(queueLength, (n) => n === 0, 60_000);
    expect(handled(old) + handled(standBy)).toBeGreaterThan(0);
    // Its 'handled' events follow each commit over IPC: the last batch's may still be on their way.
    await waitUntil(
      async () => handled(next),
      (n) => n >= N / 2,
      10_000,
    );
    const state = (await next.rpc('get')) as { count: number; sum: number; upgradedFrom: number };
    expect(state).toMatchObject({ count: N, sum: (N * (N + 1)) / 2, upgradedFrom: 1 }); // each handled once
    expect(decodeStateVersion(await tenant.read((tx) => tx.get(pack([...TUID, 's', 'n']))))).toBe(2);
    expect((await tenant.read((tx) => readIndexRecord(tx, TUID)))?.version).toBe(2);

    // The old version cannot come back: a restarted old process refuses to start.
    const again = await spawn(db, 1);
    await expect(again.rpc('start', {})).rejects.toMatchObject({ code: 'VERSION_AHEAD' });
  },
  180_000,
);
