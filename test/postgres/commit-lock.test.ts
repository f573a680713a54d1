/**
 * The PostgreSQL backend's commit lock and its consequences: a transaction that adds holds the
 * database-wide lock only while the server runs its commit batch (never across its body), a commit
 * whose reply is lost still tells its versionstamp, and a watch set after a read that missed a commit
 * still fires for it. Against the server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange, unboundVersionstamp, unpack } from '../../src/backend/keys';
import type { Backend } from '../../src/backend/types';
import type { PostgresBackend } from '../../src/backend/postgres/postgres-backend';
import { tenantPrefix } from '../../src/backend/common/tenant-path';
import { dropSchema, freshSchema, sleep } from '../helpers/backend/factories';
import { TcpFaultProxy } from '../helpers/net/tcp-fault-proxy';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const b = (s: string) => Buffer.from(s);
const k = (...items: Array<string | number>) => pack(items);
const suite = URL ? describe : describe.skip;

suite('postgres commit lock', () => {
  const url = URL!;
  const admin = postgres(url, { max: 2, onnotice: () => undefined });
  const schemas: string[] = [];
  const opened: Backend[] = [];

  async function open(schema: string, target = url, poolSize = 3): Promise<PostgresBackend> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const backend = (await openBackend(target, { postgres: { schema, poolSize } })) as PostgresBackend;
    opened.push(backend);
    return backend;
  }

  afterAll(async () => {
    await Promise.all(opened.map((x) => x.close()));
    for (const s of schemas) await dropSchema(url, s);
    await admin.end({ timeout: 5 });
  });

  test('a transaction that added and is still in its body does not stop another instance pushing', async () => {
    const schema = freshSchema();
    const [one, two] = await Promise.all([open(schema), open(schema)]);
    const [t1, t2] = await Promise.all([one.openTenant(['t']), two.openTenant(['t'])]);
    await t1.transact((tx) => tx.set(k('x'), b('1')));
    const push = () =>
      t2.transact((tx) => {
        tx.setVersionstampedKey(['q', unboundVersionstamp()], b('item'));
        tx.add(k('pushed'), 1);
      });
    let pushedDuringBody: boolean | undefined;
    await t1.transact(async (tx) => {
      tx.add(k('popped'), 1); // a pop counter, say
      tx.setVersionstampedValue(k('version'));
      await tx.get(k('x')); // a read after the add: before, the lock went out with it
      // The body goes on while another instance pushes to another counter.
      pushedDuringBody = await Promise.race([
        Promise.all([push(), push()]).then(() => true),
        sleep(4000).then(() => false),
      ]);
    });
    expect(pushedDuringBody).toBe(true);
    const n = await t1.read((tx) => Promise.all([tx.get(k('pushed')), tx.get(k('popped'))]));
    expect(n.map((v) => v!.readBigInt64LE(0))).toEqual([2n, 1n]);
  });

  test('concurrent blind pushers to one counter do not conflict', async () => {
    const schema = freshSchema();
    const backends = await Promise.all([open(schema), open(schema)]);
    const tenants = await Promise.all(backends.map((x) => x.openTenant(['t'])));
    let runs = 0;
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        tenants[i % 2].transact((tx) => {
          runs++;
          tx.setVersionstampedKey(['q', unboundVersionstamp()], b(String(i)));
          tx.add(k('pushed'), 1);
        }),
      ),
    );
    expect(runs).toBe(40);
    const { start, end } = prefixRange(['q']);
    const items = await tenants[0].read((tx) => tx.getRange(start, end));
    expect(items).toHaveLength(40);
  });

  test('a commit cut while it waits on the server, then found applied, still gives its versionstamp', async () => {
    const schema = freshSchema();
    await (await open(schema)).close(); // creates the schema
    const target = new globalThis.URL(url);
    const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
    try {
      target.host = `127.0.0.1:${proxy.port}`;
      const tenant = await (await open(schema, target.toString(), 1)).openTenant(['t']);
      // The same transaction once first, so its one connection has every statement prepared (the
      // client sends a statement it has not prepared yet only once the previous ones are answered).
      await tenant.transact((tx) => {
        tx.setVersionstampedKey(['warm', unboundVersionstamp()], b('x'));
        tx.add(k('pushed'), 0);
        void tx.getVersionstamp();
      });
      const counterKey = Buffer.concat([tenantPrefix(['t']), k('pushed')]);
      // Hold the counter's row lock so the commit batch waits on the server after its id and stamp
      // were answered (the versionstamp's reply came after the writes before: it was lost).
      const holder = await admin.reserve();
      try {
        await holder.unsafe('BEGIN');
        await holder.unsafe(`SELECT 1 FROM "${schema}".kv WHERE key = $1 FOR UPDATE`, [counterKey]);
        let runs = 0;
        const stamps: Array<Promise<Buffer>> = [];
        const pushing = tenant.transact((tx) => {
          runs++;
          tx.setVersionstampedKey(['item', unboundVersionstamp()], b('x'));
          tx.add(k('pushed'), 1);
          const stamp = tx.getVersionstamp();
          stamp.catch(() => undefined);
          stamps.push(stamp);
        });
        await sleep(300);
        // The replies stop coming (the id and stamp are in hand); the server commits; the wire is cut.
        expect(proxy.stall()).toBeGreaterThan(0);
        await holder.unsafe('ROLLBACK');
        await sleep(300);
        proxy.cut();
        proxy.unstall(); // for the connections to come
        await pushing;
        expect(runs).toBe(1); // found applied through its id
        const { start, end } = prefixRange(['item']);
        const rows = await tenant.read((tx) => tx.getRange(start, end));
        expect(rows).toHaveLength(1);

        const stamp = await stamps[0];
        expect(Buffer.isBuffer(stamp)).toBe(true);
        const itemStamp = (unpack(rows[0].key)[1] as { value: Buffer }).value.subarray(0, 10);
        expect(stamp.toString('hex')).toBe(itemStamp.toString('hex'));
      } finally {
        holder.release();
      }
    } finally {
      await proxy.close();
    }
  });

  test('a commit whose bytes stop arriving part-way holds no commit lock: another process pushes meanwhile', async () => {
    const schema = freshSchema();
    const other = await (await open(schema)).openTenant(['t']); // creates the schema
    const target = new globalThis.URL(url);
    const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
    try {
      target.host = `127.0.0.1:${proxy.port}`;
      const tenant = await (await open(schema, target.toString(), 1)).openTenant(['t']);
      let cutAfter: number | undefined;
      const push = (t: typeof tenant, tag: string) =>
        t.transact(async (tx) => {
          await tx.get(k('x')); // the snapshot is taken: the commit batch starts with LOCK
          tx.setVersionstampedKey(['q', unboundVersionstamp()], b(tag));
          tx.add(k('pushed'), 1);
          if (cutAfter !== undefined) proxy.stallUpAfter(cutAfter); // what follows is the commit
          cutAfter = undefined;
        });
      await push(tenant, 'warm'); // every statement prepared on the one connection
      // Cut after a few bytes, after LOCK's bytes as an extended-protocol message, and further on.
      for (const bytes of [5, 40, 90, 200]) {
        cutAfter = bytes;
        const stalled = push(tenant, `cut${bytes}`);
        await sleep(300);
        const holders = await admin.unsafe<Array<{ port: number | null }>>(
          `SELECT a.client_port AS port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.granted AND l.relation = '"${schema}".commit_lock'::regclass`,
        );
        expect(holders.filter((h) => proxy.upstreamPorts.includes(h.port ?? -1))).toEqual([]);
        const pushed = await Promise.race([
          push(other, `other${bytes}`).then(() => true),
          sleep(2000).then(() => false),
        ]);
        expect(pushed).toBe(true);
        proxy.unstall();
        await stalled;
      }
      const n = await other.read((tx) => tx.get(k('pushed')));
      expect(n!.readBigInt64LE(0)).toBe(9n);
    } finally {
      await proxy.close();
    }
  });

  test('a watch set after a read that missed a commit fires for that commit', async () => {
    const schema = freshSchema();
    const [one, two] = await Promise.all([open(schema), open(schema)]);
    const [t1, t2] = await Promise.all([one.openTenant(['t']), two.openTenant(['t'])]);
    // Start the LISTEN side of `one` (its first armed watch).
    const warm = await t1.watch(k('warm'));
    await t2.transact((tx) => tx.set(k('warm'), b('1')));
    expect(await warm.changed).toBe(true);
    await t1.transact((tx) => tx.set(k('w'), b('old')));
    const notified = () => (one as unknown as { watcher: { notifications: number } }).watcher.notifications;
    const watch = await t1.transact(async (tx) => {
      expect((await tx.get(k('w')))!.toString()).toBe('old'); // the snapshot is taken here
      const before = notified();
      await t2.transact((tx2) => tx2.set(k('w'), b('new'))); // not in this transaction's snapshot
      for (let i = 0; i < 200 && notified() === before; i++) await sleep(10); // `one` heard of it
      expect(notified()).toBeGreaterThan(before);
      return tx.watch(k('w'));
    });
    const fired = await Promise.race([watch.changed, sleep(5000).then(() => 'never' as const)]);
    expect(fired).toBe(true);
  });
});
