/**
 * What the PostgreSQL backend promises beyond the shared contract (conformance.test.ts runs that on
 * it): URL and option errors, an unreachable server, several backend instances (pools, as several
 * processes would have) on one schema — versionstamp order, watches, concurrent schema creation —,
 * lost connections, and close() leaving no connection behind. Against the server of the test run
 * (DGEN_TEST_POSTGRES_URL, started by Jest's globalSetup unless set by the user).
 */
import postgres from 'postgres';
import { openBackend } from '../../src/backend/open-backend';
import { pack, prefixRange, unboundVersionstamp, unpack } from '../../src/backend/keys';
import type { Backend, Tenant } from '../../src/backend/types';
import { PostgresBackend } from '../../src/backend/postgres/postgres-backend';
import { tenantPrefix } from '../../src/backend/common/tenant-path';
import { dropSchema, freshSchema, sleep } from '../helpers/backend/factories';
import { freePort } from '../helpers/net/listener';
import { TcpFaultProxy } from '../helpers/net/tcp-fault-proxy';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const b = (s: string) => Buffer.from(s);
const k = (...items: Array<string | number>) => pack(items);

const suite = URL ? describe : describe.skip;

suite('postgres backend', () => {
  const url = URL!;
  const admin = postgres(url, { max: 2, onnotice: () => undefined });
  const schemas: string[] = [];
  const opened: Backend[] = [];

  async function open(schema: string, poolSize = 4): Promise<PostgresBackend> {
    if (!schemas.includes(schema)) schemas.push(schema);
    const backend = (await openBackend(url, { postgres: { schema, poolSize } })) as PostgresBackend;
    opened.push(backend);
    return backend;
  }

  /** Sessions of the server opened by a backend on `schema` (its application_name names the schema). */
  async function sessionsOf(schema: string): Promise<number> {
    const [row] = await admin.unsafe<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND application_name = $1`,
      [`dgen-ts:${schema}`.slice(0, 63)],
    );
    return row.n;
  }

  afterAll(async () => {
    await Promise.all(opened.map((x) => x.close()));
    for (const s of schemas) await dropSchema(url, s);
    await admin.end({ timeout: 5 });
  });

  describe('opening', () => {
    test.each([
      'postgres://',
      'postgresql:x',
      'postgres://user:pw@:5432/db',
      'postgres://host:notaport/db',
      'postgres://[bad',
    ])('%j is BAD_BACKEND_SPEC', async (spec) => {
      await expect(openBackend(spec)).rejects.toMatchObject({ code: 'BAD_BACKEND_SPEC' });
    });

    test('a malformed URL is BAD_BACKEND_SPEC without its password', async () => {
      const err = await openBackend('postgres://me:s3cret-pw@[bad/db').catch((e: Error) => e);
      expect(err).toMatchObject({ code: 'BAD_BACKEND_SPEC' });
      expect((err as Error).message).not.toContain('s3cret-pw');
      expect((err as Error).message).toContain('me:***@');
    });

    test('unknown or malformed options are BAD_ARGUMENT', async () => {
      for (const postgresOptions of [
        { poolsize: 3 },
        { poolSize: 0 },
        { poolSize: 1.5 },
        { connectTimeoutMs: -1 },
        { schema: 'Bad-Name' },
        { schema: 'x; DROP TABLE y' },
      ])
        await expect(
          openBackend(url, { postgres: postgresOptions as Record<string, unknown> }),
        ).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    });

    test('a refused port is BACKEND_UNAVAILABLE with the reason and without the password', async () => {
      const port = await freePort();
      const started = Date.now();
      const err = await openBackend(`postgres://dgen:hunter2-very-secret@127.0.0.1:${port}/db`, {
        postgres: { connectTimeoutMs: 2000 },
      }).catch((e: Error) => e);
      expect(err).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      const text = `${(err as Error).message} ${String((err as Error).stack)} ${JSON.stringify(err)}`;
      expect(text).not.toContain('hunter2-very-secret');
      expect((err as Error).message).toMatch(/ECONNREFUSED/);
      expect((err as Error).message).toContain(`dgen:***@127.0.0.1:${port}`);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    test('a wrong password is BACKEND_UNAVAILABLE, and the password is not in the message', async () => {
      const u = new globalThis.URL(url);
      u.password = 'not-the-Password-42';
      const err = await openBackend(u.toString()).catch((e: Error) => e);
      expect(err).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      expect((err as Error).message).not.toContain('not-the-Password-42');
      expect((err as Error).message).toMatch(/password authentication failed/);
    });

    test('several instances creating the same schema at once all open it', async () => {
      const schema = freshSchema();
      const backends = await Promise.all(Array.from({ length: 6 }, () => open(schema, 1)));
      const [row] = await admin.unsafe<Array<{ value: string }>>(
        `SELECT value FROM "${schema}".meta WHERE name = 'layout_version'`,
      );
      expect(row.value).toBe('1');
      const tenants = await Promise.all(backends.map((x) => x.openTenant(['t'])));
      await Promise.all(tenants.map((t, i) => t.transact((tx) => tx.add(k('n'), i + 1))));
      const n = await tenants[0].read((tx) => tx.get(k('n')));
      expect(n!.readBigInt64LE(0)).toBe(21n);
    });

    test('a newer layout version is refused with BACKEND_UNAVAILABLE', async () => {
      const schema = freshSchema();
      await (await open(schema)).close();
      await admin.unsafe(`UPDATE "${schema}".meta SET value = '99' WHERE name = 'layout_version'`);
      await expect(openBackend(url, { postgres: { schema } })).rejects.toMatchObject({
        code: 'BACKEND_UNAVAILABLE',
        message: expect.stringContaining('layout version 99'),
      });
    });
  });

  describe('two backend instances (two pools) on one schema', () => {
    let one: Tenant;
    let two: Tenant;
    beforeEach(async () => {
      const schema = freshSchema();
      one = await (await open(schema)).openTenant(['q']);
      two = await (await open(schema)).openTenant(['q']);
    });

    test('versionstamps of concurrent commits from both sort in commit order', async () => {
      // Each transaction takes the next number from a shared counter (a serializable read-modify-write,
      // so the numbers follow commit order) and writes it under a versionstamped key.
      const seqKey = k('seq');
      const step = (t: Tenant) =>
        t.transact(async (tx) => {
          const v = await tx.get(seqKey);
          const seq = v ? v.readBigInt64LE(0) : 0n;
          const next = Buffer.alloc(8);
          next.writeBigInt64LE(seq + 1n);
          tx.set(seqKey, next);
          tx.setVersionstampedKey(['log', unboundVersionstamp()], b(String(seq)));
        });
      await Promise.all(Array.from({ length: 40 }, (_, i) => step(i % 2 ? one : two)));
      const { start, end } = prefixRange(['log']);
      const rows = await one.read((tx) => tx.getRange(start, end));
      expect(rows.map((r) => Number(r.value.toString()))).toEqual(Array.from({ length: 40 }, (_, i) => i));
    });

    test('pushers on both, 8 at a time, lose nothing and duplicate no versionstamp', async () => {
      const pushed = k('pushed');
      let runs = 0;
      const push = (t: Tenant, i: number) =>
        t.transact((tx) => {
          runs++;
          tx.setVersionstampedKey(['item', unboundVersionstamp()], b(String(i)));
          tx.add(pushed, 1);
        });
      for (let round = 0; round < 10; round++)
        await Promise.all(Array.from({ length: 8 }, (_, j) => push(j % 2 ? one : two, round * 8 + j)));
      const { start, end } = prefixRange(['item']);
      const rows = await two.read((tx) => tx.getRange(start, end));
      expect(rows).toHaveLength(80);
      const stamps = rows.map((r) => (unpack(r.key)[1] as { value: Buffer }).value.toString('hex'));
      expect(new Set(stamps).size).toBe(80);
      expect((await one.read((tx) => tx.get(pushed)))!.readBigInt64LE(0)).toBe(80n);
      // Pushers queue on the commit lock instead of failing each other.
      expect(runs - 80).toBeLessThanOrEqual(4);
    });

    test('a watch through one fires for a commit through the other, not for the same value', async () => {
      await one.transact((tx) => tx.set(k('w'), b('1')));
      const same = await one.watch(k('w'));
      await two.transact((tx) => tx.set(k('w'), b('1')));
      await two.transact((tx) => tx.set(k('elsewhere'), b('x')));
      expect(await Promise.race([same.changed, sleep(300).then(() => 'pending')])).toBe('pending');
      const t0 = Date.now();
      await two.transact((tx) => tx.set(k('w'), b('2')));
      expect(await same.changed).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1000);
      const onAdd = await two.watch(k('n'));
      const onClear = await two.watch(k('w'));
      await one.transact((tx) => tx.add(k('n'), 1));
      // (Awaited before the clear, which clears n too: as with SQLite across processes, a watcher
      // that reads the key only after a later commit undid the change sees no change.)
      expect(await onAdd.changed).toBe(true);
      await one.transact((tx) => tx.clearRange(k('a'), k('z')));
      expect(await onClear.changed).toBe(true);
    });

    test('a watch on a key its transaction sets or clears starts from that value (not read back)', async () => {
      // A caller's push (set its marker, watch it, push): the baseline is what it wrote, so the commit
      // reads nothing (a serializable read would lock a whole index page, see PostgresTransaction).
      await two.transact((tx) => tx.set(k('m'), b('old')));
      const [mine, gone] = await one.transact((tx) => {
        tx.set(k('m'), b('pending'));
        tx.clear(k('g'));
        return [tx.watch(k('m')), tx.watch(k('g'))];
      });
      await two.transact((tx) => {
        tx.set(k('m'), b('pending'));
        tx.clear(k('g'));
      });
      expect(await Promise.race([mine.changed, gone.changed, sleep(300).then(() => 'pending')])).toBe(
        'pending',
      );
      await two.transact((tx) => tx.set(k('m'), b('ready')));
      expect(await mine.changed).toBe(true);
      await two.transact((tx) => tx.set(k('g'), b('x')));
      expect(await gone.changed).toBe(true);
      // A later add or versionstamped value makes the value unknown: read at commit as before.
      const added = await one.transact((tx) => {
        tx.set(k('n2'), Buffer.alloc(8));
        tx.add(k('n2'), 1);
        return tx.watch(k('n2'));
      });
      await two.transact((tx) => tx.add(k('n2'), 0));
      expect(await Promise.race([added.changed, sleep(300).then(() => 'pending')])).toBe('pending');
      await two.transact((tx) => tx.add(k('n2'), 1));
      expect(await added.changed).toBe(true);
    });
  });

  test('a push that watches the key it sets reads nothing: it takes no predicate lock', async () => {
    // As a caller's push (set its marker, watch it, push): a serializable read of the watch's baseline
    // would lock a whole index page, making the push the reader in others' read/write conflicts (a
    // consumer that writes a reply nearby then fails as the pivot). Seen in pg_locks while an older
    // serializable transaction keeps committed transactions' predicate locks alive.
    const schema = freshSchema();
    const t = await (await open(schema)).openTenant(['p']);
    const older = await admin.reserve();
    const sireads = async () => {
      const [row] = await admin.unsafe<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE mode = 'SIReadLock' AND relation IN ($1::regclass, $2::regclass)`,
        [`"${schema}".kv`, `"${schema}".kv_pkey`],
      );
      return row.n;
    };
    try {
      await t.transact((tx) => tx.set(k('other'), b('x')));
      await older.unsafe('BEGIN ISOLATION LEVEL SERIALIZABLE');
      await older.unsafe('SELECT 1');
      await t.transact((tx) => {
        tx.set(k('marker'), b('pending'));
        tx.setVersionstampedKey(['q', unboundVersionstamp()], b('item'));
        tx.add(k('pushed'), 1);
        return tx.watch(k('marker'));
      });
      expect(await sireads()).toBe(0);
      // The control: a watch on a key the transaction does not write reads it, and locks.
      await t.transact((tx) => {
        tx.set(k('marker2'), b('pending'));
        return tx.watch(k('other'));
      });
      expect(await sireads()).toBeGreaterThan(0);
    } finally {
      await older.unsafe('ROLLBACK').catch(() => undefined);
      older.release();
    }
  });

  test('a connection lost in the middle of a transaction: the body runs again on a fresh one', async () => {
    const schema = freshSchema();
    const tenant = await (await open(schema)).openTenant(['t']);
    let runs = 0;
    const result = await tenant.transact(async (tx) => {
      runs++;
      const v = await tx.get(k('a'));
      if (runs === 1)
        await admin.unsafe(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE state = 'idle in transaction' AND query LIKE $1`,
          [`%"${schema}"%`],
        );
      tx.set(k('a'), b(`${v ? v.toString() : ''}+`));
      return runs;
    });
    expect(result).toBe(2);
    expect((await tenant.read((tx) => tx.get(k('a'))))!.toString()).toBe('+');
  });

  test('a connection cut while the commit waits on the server: the outcome is looked up, the push applies once', async () => {
    const schema = freshSchema();
    await (await open(schema)).close(); // creates the schema
    const target = new globalThis.URL(url);
    const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
    try {
      target.host = `127.0.0.1:${proxy.port}`;
      const backend = (await openBackend(target.toString(), {
        postgres: { schema, poolSize: 2 },
      })) as Backend;
      opened.push(backend);
      const tenant = await backend.openTenant(['t']);
      await tenant.transact((tx) => tx.set(k('warm'), b('1')));
      // Hold the row lock of the counter, so that the push's pipeline waits on the server after its
      // transaction id was answered, then cut the wire under it.
      await tenant.transact((tx) => tx.add(k('pushed'), 0));
      const counterKey = Buffer.concat([tenantPrefix(['t']), k('pushed')]);
      const holder = await admin.reserve();
      try {
        await holder.unsafe('BEGIN');
        await holder.unsafe(`SELECT 1 FROM "${schema}".kv WHERE key = $1 FOR UPDATE`, [counterKey]);
        let runs = 0;
        const pushing = tenant.transact((tx) => {
          runs++;
          tx.setVersionstampedKey(['item', unboundVersionstamp()], b('x'));
          tx.add(k('pushed'), 1);
        });
        await sleep(300);
        expect(proxy.cut()).toBeGreaterThan(0);
        await sleep(200);
        await holder.unsafe('ROLLBACK');
        await pushing;
        const { start, end } = prefixRange(['item']);
        const rows = await tenant.read((tx) => tx.getRange(start, end));
        const pushed = await tenant.read((tx) => tx.get(k('pushed')));
        // Applied once whatever the server did after the cut: found committed (1 run) or aborted (run again).
        expect(rows).toHaveLength(1);
        expect(pushed!.readBigInt64LE(0)).toBe(1n);
        expect(runs).toBeLessThanOrEqual(2);
      } finally {
        holder.release();
      }
    } finally {
      await proxy.close();
    }
  });

  test('close() leaves no connection of the backend on the server', async () => {
    const schema = freshSchema();
    const backend = await open(schema, 3);
    const tenant = await backend.openTenant(['t']);
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => tenant.transact((tx) => tx.set(k('a', i), b('x')))),
    );
    const watch = await tenant.watch(k('w')); // opens the LISTEN connection
    await tenant.transact((tx) => tx.set(k('w'), b('1')));
    expect(await watch.changed).toBe(true);
    await tenant.read((tx) => tx.get(k('a', 0)));
    expect(await sessionsOf(schema)).toBeGreaterThan(0);
    await backend.close();
    for (let i = 0; i < 50 && (await sessionsOf(schema)) > 0; i++) await sleep(20);
    expect(await sessionsOf(schema)).toBe(0);
    await expect(tenant.read((tx) => tx.get(k('a', 0)))).rejects.toMatchObject({ code: 'BACKEND_CLOSED' });
  });
});
