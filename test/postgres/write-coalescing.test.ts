/**
 * A batch of statements leaves the client in one socket write (writesTogether), however long: the
 * client writes its buffer at once when it reaches 1 KB and the rest later, and every write is a
 * system call and a wake-up of the server process. Counted where the socket hands data to the system.
 * Against the server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import { openBackend } from '../../src/backend/open-backend';
import type { Backend, Tenant, Transaction } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { countSocketWrites, portOf } from '../helpers/postgres/socket-traffic';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;

suite('postgres: a batch of statements is one socket write', () => {
  const schema = freshSchema();
  let backend: Backend;
  let tenant: Tenant;
  const port = portOf(URL ?? 'postgres://x@127.0.0.1:1/db');
  const keys = Array.from({ length: 24 }, (_, i) => Buffer.from(`${'k'.repeat(120)}-${i}`));

  beforeAll(async () => {
    backend = await openBackend(URL!, { postgres: { schema, poolSize: 1 } });
    tenant = await backend.openTenant(['coalesce']);
    await tenant.transact((tx) => keys.forEach((k, i) => tx.set(k, Buffer.from([i]))));
  });
  afterAll(async () => {
    await backend.close();
    await dropSchema(URL!, schema);
  });

  test('24 range reads sent together (about 7 KB): one write, and the transaction commits', async () => {
    let values: Array<Buffer | undefined> = [];
    const body = async (tx: Transaction) => {
      values = (await Promise.all(keys.map((k) => tx.getRange(k, Buffer.concat([k, Buffer.from([0])]))))).map(
        ([kv]) => kv?.value,
      );
      tx.set(Buffer.from('done'), Buffer.from('1'));
    };
    await tenant.transact(body); // the connection prepares the statements (a round trip of their own)
    const { writes } = await countSocketWrites(port, () => tenant.transact(body));
    expect(values.map((v) => v?.[0])).toEqual(keys.map((_, i) => i));
    // The reads (with BEGIN) in one write, the commit in another. (Before: 6 writes for the reads.)
    expect(writes).toBe(2);
    expect(await tenant.read((tx) => tx.get(Buffer.from('done')))).toEqual(Buffer.from('1'));
  });
});
