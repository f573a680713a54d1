/**
 * A batch of statements leaves the client in one socket write (writesTogether), however long: the
 * client writes its buffer at once when it reaches 1 KB and the rest later, and every write is a
 * system call and a wake-up of the server process. Counted where the socket hands data to the system.
 * Against the server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import * as net from 'node:net';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend, Tenant, Transaction } from '../../src/backend/types';
import { dropSchema, freshSchema } from '../helpers/backend/factories';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;

type Generic = (this: net.Socket, writev: boolean, data: unknown, ...rest: unknown[]) => unknown;
const proto = net.Socket.prototype as unknown as { _writeGeneric: Generic };

/** The socket writes (write or writev system calls) to the server made while `fn` runs. */
async function countWrites(port: number, fn: () => Promise<unknown>): Promise<number> {
  const original = proto._writeGeneric;
  let writes = 0;
  proto._writeGeneric = function (this: net.Socket, ...args) {
    if (this.remotePort === port) writes++;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto._writeGeneric = original;
  }
  return writes;
}

suite('postgres: a batch of statements is one socket write', () => {
  const schema = freshSchema();
  let backend: Backend;
  let tenant: Tenant;
  const port = Number(new globalThis.URL(URL ?? 'postgres://x@127.0.0.1:1/db').port);
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

  test('24 reads sent together (about 7 KB): one write, and the transaction commits', async () => {
    let values: Array<Buffer | undefined> = [];
    const body = async (tx: Transaction) => {
      values = await Promise.all(keys.map((k) => tx.get(k)));
      tx.set(Buffer.from('done'), Buffer.from('1'));
    };
    await tenant.transact(body); // the connection prepares the statements (a round trip of their own)
    const writes = await countWrites(port, () => tenant.transact(body));
    expect(values.map((v) => v?.[0])).toEqual(keys.map((_, i) => i));
    // The reads (with BEGIN) in one write, the commit in another. (Before: 6 writes for the reads.)
    expect(writes).toBe(2);
    expect(await tenant.read((tx) => tx.get(Buffer.from('done')))).toEqual(Buffer.from('1'));
  });
});
