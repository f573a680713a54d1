/**
 * `close()` with transactions under way: they end first (a read finishes its body and gives its
 * connection back), then the pool ends at once. Given back after the pool began to end, a connection
 * kept the client library's `end` waiting for its whole 5 s timeout. Against the server of the test run
 * (DGEN_TEST_POSTGRES_URL).
 */
import 'reflect-metadata';
import { openBackend } from '../../src/backend/open-backend';
import { Runtime } from '../../src/facade/runtime';
import { dropSchema, freshSchema } from '../helpers/backend/factories';
import { Counter } from '../helpers/runtime/servers';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;
const K = Buffer.from('k');

suite('postgres: close() while transactions are under way', () => {
  const schema = freshSchema();
  afterAll(() => dropSchema(URL!, schema));

  test('a read in the middle of its body finishes, and close() then ends the pool at once', async () => {
    const backend = await openBackend(URL!, { postgres: { schema } });
    const tenant = await backend.openTenant(['close']);
    await tenant.transact((tx) => tx.set(K, Buffer.from('v')));
    let entered!: () => void;
    const inBody = new Promise<void>((r) => (entered = r));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const read = tenant.read(async (tx) => {
      const v = await tx.get(K); // its connection is reserved, inside its transaction
      entered();
      await gate;
      return v;
    });
    await inBody;
    const started = performance.now();
    const closing = backend.close();
    setTimeout(open, 100); // the body goes on while close() waits
    await closing;
    expect(performance.now() - started).toBeLessThan(2500);
    expect(await read).toEqual(Buffer.from('v'));
    await expect(tenant.read((tx) => tx.get(K))).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
  });

  test('close() right after the first watch (its LISTEN connection still connecting) leaves no socket open', async () => {
    const tcpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const before = tcpSockets();
    for (let i = 0; i < 5; i++) {
      const backend = await openBackend(URL!, { postgres: { schema } });
      const watch = await (await backend.openTenant(['w'])).watch(K);
      await backend.close();
      expect(await watch.changed).toBe(false);
    }
    // A socket left connecting by the client's end() connects, and stays open until the server drops
    // it (its authentication_timeout, a minute): look for one a little later.
    await new Promise((r) => setTimeout(r, 500));
    expect(tcpSockets()).toBeLessThanOrEqual(before);
  });

  test('closing right after a call, while the consumer is still stepping, waits for no client timeout', async () => {
    const backend = await openBackend(URL!, { postgres: { schema } });
    try {
      const ref = await Runtime.start(Counter, undefined, { tenant: await backend.openTenant(['calls']) });
      await ref.call('get');
      const started = performance.now();
      await backend.close(); // the consumer's next read is under way now (it took 5 s before)
      expect(performance.now() - started).toBeLessThan(2500);
    } finally {
      await Runtime.stopAll();
    }
  });
});
