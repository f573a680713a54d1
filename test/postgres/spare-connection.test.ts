/**
 * A read-only transaction's connection is kept, inside its transaction, for a transaction of the
 * same process that starts in the same turn of the event loop (SpareConnection): that one rolls it
 * back ahead of its BEGIN, in its own first write. Counted where the socket hands data to the system.
 * Against the server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import { openBackend } from '../../src/backend/open-backend';
import type { Backend, Tenant } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { countSocketWrites, portOf } from '../helpers/postgres/socket-traffic';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;

const K = Buffer.from('k');
const turn = () => new Promise((r) => setImmediate(r));

suite('postgres: a read-only transaction leaves its connection to the next transaction', () => {
  const schema = freshSchema();
  let backend: Backend;
  let other: Backend;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const port = portOf(URL ?? 'postgres://x@127.0.0.1:1/db');

  beforeAll(async () => {
    // One connection: the transactions below can only run on the one the read used.
    backend = await openBackend(URL!, { postgres: { schema, poolSize: 1 } });
    other = await openBackend(URL!, { postgres: { schema, poolSize: 1 } });
    tenant = await backend.openTenant(['spare']);
    otherTenant = await other.openTenant(['spare']);
    await tenant.transact((tx) => tx.set(K, Buffer.from('1')));
  });
  afterAll(async () => {
    await backend.close();
    await other.close();
    await dropSchema(URL!, schema);
  });

  test('a transaction right after a read sees commits made after the read began (its snapshot is new)', async () => {
    await tenant.transact((tx) => tx.set(K, Buffer.from('1')));
    const seen = await tenant.read(async (tx) => {
      const v = await tx.get(K);
      await otherTenant.transact((t) => t.set(K, Buffer.from('2'))); // committed while the read is open
      return v;
    });
    // Same turn: takes the read's connection, still inside the read's transaction.
    const now = await tenant.transact((tx) => tx.get(K));
    expect(seen).toEqual(Buffer.from('1'));
    expect(now).toEqual(Buffer.from('2'));
    // And a later read too (the connection was rolled back, released and reused).
    await turn();
    expect(await tenant.read((tx) => tx.get(K))).toEqual(Buffer.from('2'));
  });

  test("a read then a transaction in the same turn: the read's ROLLBACK rides in the transaction's first write", async () => {
    const body = async () => {
      await tenant.read((tx) => tx.get(K));
      await tenant.transact(async (tx) => {
        await tx.get(K);
        tx.set(K, Buffer.from('3'));
      });
    };
    await body(); // statements prepared
    await turn();
    // The read (BEGIN, get), then ROLLBACK, BEGIN, get, and the commit: 3 writes (4 with its own ROLLBACK).
    expect((await countSocketWrites(port, body)).writes).toBe(3);
    expect(await tenant.read((tx) => tx.get(K))).toEqual(Buffer.from('3'));
  });

  test('not taken within the turn, the read is rolled back and its connection released', async () => {
    await tenant.read((tx) => tx.get(K));
    await turn();
    await turn();
    // Another backend's view of the session: idle, no transaction open.
    const sql = (await import('postgres')).default(URL!, { max: 1, onnotice: () => undefined });
    try {
      const rows = await sql.unsafe<Array<{ state: string }>>(
        `SELECT state FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [`dgen-ts:${schema}`],
      );
      expect(rows.map((r) => r.state).filter((s) => s !== 'idle')).toEqual([]);
      expect(rows.length).toBeGreaterThan(0);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  test('a spare connection is rolled back when the backend closes', async () => {
    const b = await openBackend(URL!, { postgres: { schema, poolSize: 1 } });
    const t = await b.openTenant(['spare']);
    await t.read((tx) => tx.get(K));
    await b.close(); // in the same turn: the parked connection is flushed and ended
    await expect(t.read((tx) => tx.get(K))).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
  });
});
