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
