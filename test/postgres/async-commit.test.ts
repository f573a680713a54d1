/**
 * Transactions that defer their flush (TransactOptions.deferFlush: a call's push, a timer's fire, the
 * handling of casts) commit with `synchronous_commit = off`: PostgreSQL acknowledges them before their
 * WAL record is flushed, and the next synchronous commit flushes it. Watched through the server's own
 * WAL positions, and through a crash (immediate shutdown) of a PostgreSQL of the test's own.
 */
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { startPostgres } from '../helpers/postgres/server';
import { Runtime } from '../../src/facade/runtime';
import { countingBackend } from '../helpers/runtime/counting-backend';
import { Counter } from '../helpers/runtime/servers';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const K = (name: string) => Buffer.from(name);
const V = Buffer.from('v');

suite('postgres: commits that acknowledge nothing are not flushed on their own', () => {
  const schema = freshSchema();
  let backend: Backend;
  let sql: postgres.Sql;

  beforeAll(async () => {
    backend = await openBackend(URL!, { postgres: { schema } });
    sql = postgres(URL!, { max: 1, onnotice: () => undefined });
  });
  afterAll(async () => {
    await backend.close();
    await sql.end({ timeout: 1 });
    await dropSchema(URL!, schema);
  });

  /** Whether WAL was written that is not on disk yet (flushed position behind the inserted one). */
  const unflushed = async () =>
    (await sql`SELECT pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn() AS behind`)[0]
      .behind as boolean;

  test('a deferred commit is acknowledged before its WAL is flushed; a synchronous one after, with all before it', async () => {
    const tenant = await backend.openTenant(['async']);
    let seenBehind = 0;
    for (let i = 0; i < 10; i++) {
      await tenant.transact((tx) => tx.set(K(`d${i}`), V), { deferFlush: true });
      if (await unflushed()) seenBehind++; // unless the WAL writer's 200 ms round came in between
    }
    expect(seenBehind).toBeGreaterThan(0);
    const [{ lsn }] = await sql`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
    await tenant.transact((tx) => tx.set(K('sync'), V));
    const [{ flushed }] = await sql`SELECT pg_current_wal_flush_lsn() >= ${lsn}::pg_lsn AS flushed`;
    expect(flushed).toBe(true); // the synchronous commit flushed the deferred ones before it
  });

  test('deferFlush as a function answers at the commit: true commits asynchronously, false synchronously', async () => {
    const tenant = await backend.openTenant(['async-fn']);
    let seenBehind = 0;
    let asked = 0;
    for (let i = 0; i < 10; i++) {
      await tenant.transact((tx) => tx.set(K(`d${i}`), V), { deferFlush: () => (asked++, true) });
      if (await unflushed()) seenBehind++;
    }
    expect(asked).toBe(10);
    expect(seenBehind).toBeGreaterThan(0);
    const [{ lsn }] = await sql`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
    await tenant.transact((tx) => tx.set(K('sync'), V), { deferFlush: () => false });
    const [{ flushed }] = await sql`SELECT pg_current_wal_flush_lsn() >= ${lsn}::pg_lsn AS flushed`;
    expect(flushed).toBe(true);
  });

  test("a consumer's fused step that handles only casts defers its flush; one with a call does not", async () => {
    const counted = countingBackend(backend);
    const ref = await Runtime.start(Counter, undefined, { tenant: await counted.openTenant(['fused']) });
    try {
      await ref.call('get'); // started, idle, waiting on its queue
      const before = { ...counted.counts };
      for (let i = 0; i < 5; i++) {
        await ref.cast({ type: 'add', by: 1 }); // each woken alone: a fused step (read, handle, write in one transaction)
        await new Promise((r) => setTimeout(r, 100));
      }
      for (let i = 0; i < 100 && counted.counts.deferred - before.deferred < 5; i++)
        await new Promise((r) => setTimeout(r, 20));
      const writes = counted.counts.writes - before.writes;
      const deferred = counted.counts.deferred - before.deferred;
      expect(writes).toBeGreaterThanOrEqual(10); // 5 pushes, 5 handlings (and the lease's renewals)
      // A cast's push is acknowledged, so flushed; its handling acknowledges nothing: deferred, though
      // its batch was read in the same transaction (it was flushed before deferFlush could be a function).
      expect(deferred).toBe(5);
      const caller = await Runtime.start(Counter, undefined, {
        tenant: await counted.openTenant(['fused']),
        consume: false,
      });
      const last = { ...counted.counts };
      expect(await caller.call('get')).toBe(5); // queued: the consumer handles it (a fused step)
      // The reply may reach the caller (its NOTIFY) before the consumer's transact resolves and counts.
      for (let i = 0; i < 100 && counted.counts.writes - last.writes < 2; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(counted.counts.writes - last.writes).toBe(2); // the call's push and its handling
      expect(counted.counts.deferred - last.deferred).toBe(1); // only the push
    } finally {
      await ref.stop();
    }
  });
});

test('after a crash of the server, a deferred commit followed by a synchronous one is there with it', async () => {
  const pg = await startPostgres({ maxConnections: 20 });
  try {
    let backend = await openBackend(pg.url);
    let tenant = await backend.openTenant(['crash']);
    await tenant.transact((tx) => tx.set(K('deferred'), V), { deferFlush: true });
    await tenant.transact((tx) => tx.set(K('acknowledged'), V));
    await pg.stop('immediate'); // SIGQUIT: no shutdown checkpoint, as a crash
    await backend.close().catch(() => undefined);
    await pg.restart();
    backend = await openBackend(pg.url);
    tenant = await backend.openTenant(['crash']);
    const [deferred, acknowledged] = await tenant.read((tx) =>
      Promise.all([tx.get(K('deferred')), tx.get(K('acknowledged'))]),
    );
    expect(acknowledged).toEqual(V);
    expect(deferred).toEqual(V);
    await backend.close();
  } finally {
    await pg.destroy();
  }
}, 120_000);
