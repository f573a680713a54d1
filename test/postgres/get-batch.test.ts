/**
 * Gets a transaction asks for together go to the server as one statement (GetBatch), with the same
 * answers as one statement each: missing keys, the same key twice, a write asked for after a get (not
 * seen by it) or before it (seen), snapshot reads, and a read under the commit lock. Statements are
 * counted where the socket hands data to the system. Against the server of the test run.
 */
import { openBackend } from '../../src/backend/open-backend';
import type { Backend, Tenant } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { countSocketWrites, portOf } from '../helpers/postgres/socket-traffic';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;

const b = (s: string) => Buffer.from(s);

suite('postgres: gets asked for together are one statement', () => {
  const schema = freshSchema();
  let backend: Backend;
  let tenant: Tenant;
  const port = portOf(URL ?? 'postgres://x@127.0.0.1:1/db');

  beforeAll(async () => {
    backend = await openBackend(URL!, { postgres: { schema, poolSize: 1 } });
    tenant = await backend.openTenant(['gets']);
    await tenant.transact((tx) => ['a', 'b', 'c', 'd'].forEach((k) => tx.set(b(k), b(`${k}1`))));
  });
  afterAll(async () => {
    await backend.close();
    await dropSchema(URL!, schema);
  });

  test('four gets and a range read at once: two statements after BEGIN; missing and repeated keys answered', async () => {
    const read = () =>
      tenant.read((tx) =>
        Promise.all([
          tx.get(b('a')),
          tx.get(b('zz')),
          tx.get(b('c')),
          tx.get(b('a')),
          tx.getRange(b('b'), b('d')),
        ]),
      );
    await read(); // statements prepared
    let got: Awaited<ReturnType<typeof read>> | undefined;
    const { statements } = await countSocketWrites(port, async () => (got = await read()));
    expect(got!.slice(0, 4)).toEqual([b('a1'), undefined, b('c1'), b('a1')]);
    expect(got![4].map((kv) => kv.key.toString())).toEqual(['b', 'c']);
    // The previous read's ROLLBACK (see SpareConnection) with BEGIN, the gets, the range, and this
    // read's ROLLBACK at the end of the turn: one statement per get made 7.
    expect(statements).toBe(4);
  });

  test('a get does not see a write asked for after it, and sees one asked for before it', async () => {
    await tenant.transact(async (tx) => {
      const before = tx.get(b('a'));
      tx.set(b('a'), b('a2'));
      const after = tx.get(b('a'));
      const other = tx.get(b('b'));
      expect([await before, await after, await other]).toEqual([b('a1'), b('a2'), b('b1')]);
      tx.set(b('a'), b('a1'));
    });
  });

  test('a get of a key an add waits to write (commit lock) still sees the add', async () => {
    const n = b('n');
    await tenant.transact((tx) => tx.add(n, 5));
    await tenant.transact(async (tx) => {
      tx.add(n, 2);
      const [v, other] = await Promise.all([tx.get(n), tx.get(b('c'))]);
      expect(v!.readBigInt64LE()).toBe(7n);
      expect(other).toEqual(b('c1'));
    });
  });

  test('a bad key among gets asked for together rejects the body, and the transaction commits nothing', async () => {
    await expect(
      tenant.transact(async (tx) => {
        tx.set(b('e'), b('e1'));
        await Promise.all([tx.get(b('a')), tx.get(Buffer.alloc(20_000))]); // past the key limit
      }),
    ).rejects.toMatchObject({ code: 'KEY_TOO_LARGE' });
    expect(await tenant.read((tx) => tx.get(b('e')))).toBeUndefined();
  });
});
