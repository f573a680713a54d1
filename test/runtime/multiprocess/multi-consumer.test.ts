/**
 * Several consumer processes of one server whose state is large (3,500 ids): one of them is the active
 * consumer (ConsumerLease) and the others stand by, instead of all running every message and re-reading
 * the whole state after every commit another one made. The exact ratio is a benchmark figure
 * (server.sqlite.multi_consumer_drain_ratio); this bounds it generously.
 */
import 'reflect-metadata';
import type { Backend } from '../../../src/backend/types';
import { Runtime } from '../../../src/facade/runtime';
import { Catalog, type CatalogState } from '../../helpers/runtime/servers';
import { openSqlite, tempDir } from '../../helpers/runtime/sqlite';
import { waitUntil, Workers, type Worker } from '../../helpers/runtime/workers';

const tmp = tempDir();
const workers = new Workers();
const backends: Backend[] = [];
let pool: Worker[] = [];

beforeAll(async () => {
  pool = await Promise.all([1, 2, 3].map(() => workers.spawn({})));
}, 90_000);

afterAll(async () => {
  await Runtime.stopAll();
  await Promise.all(backends.map((b) => b.close()));
  await workers.killAll();
  tmp.dispose();
});

/** Milliseconds `consumers` consumer processes (maxBatch 1) take to drain 300 casts. */
async function drainMs(consumers: number): Promise<number> {
  const db = tmp.file(`drain-${consumers}.sqlite`);
  const backend = await openSqlite(db);
  backends.push(backend);
  const tenant = await backend.openTenant(['mp']);
  const pub = await Runtime.start<CatalogState>(Catalog, { ids: 3500 }, { tenant, consume: false });
  for (const w of pool.slice(0, consumers))
    await w.rpc('start', { db, ref: 'cat', server: 'Catalog', arg: { ids: 3500 }, opts: { maxBatch: 1 } });
  await pub.cast('bump'); // every consumer is up and one has handled something
  await waitUntil(
    () => pub.queueLength(),
    (n) => n === 0,
  );
  const t0 = Date.now();
  await pub.castMany(Array.from({ length: 300 }, () => 'bump'));
  await waitUntil(
    () => pub.queueLength(),
    (n) => n === 0,
    120_000,
    10,
  );
  const ms = Date.now() - t0;
  expect((await pub.readState()).count).toBe(301); // each message handled exactly once
  await pub.stop();
  await Promise.all(pool.map((w) => w.reset()));
  return ms;
}

test('three consumer processes of one large-state server drain its queue about as fast as one', async () => {
  const one = await drainMs(1);
  const three = await drainMs(3);
  expect(three).toBeLessThan(3 * one + 3000);
}, 240_000);
