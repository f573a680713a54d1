/**
 * Durable servers served by several real OS processes sharing one SQLite file or one PostgreSQL
 * schema (multiprocess.test.ts, multiprocess-postgres.test.ts): publishers and
 * consumers in different processes, many consumers, consumers and lock holders killed with kill -9,
 * calls that time out while no consumer runs, FIFO per producer across processes.
 *
 * Each test has its own SQLite file. Workers are forked from test/helpers/runtime/worker.ts under
 * ts-node (transpile-only) and driven over IPC. Three well-behaved workers are shared by the tests
 * (reset after each: refs stopped, files closed); workers that misbehave or get killed are forked by
 * their test and kill -9'ed after it; all are gone after the file.
 */
import 'reflect-metadata';
import { prefixRange } from '../../../src/backend/keys';
import type { Backend, Tenant } from '../../../src/backend/types';
import { Runtime } from '../../../src/facade/runtime';
import type { ServerEvent } from '../../../src/runtime/events';
import { Ledger, type LedgerState, type RecMsg } from '../../helpers/runtime/servers';
import { openSqlite, tempDir } from '../../helpers/runtime/sqlite';
import { openBackend } from '../../../src/backend/open-backend';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { transpileTree } from '../../helpers/transpile';
import { dropSchema, freshSchema } from '../../helpers/backend/factories';
import { waitUntil, Workers, type Worker, type WorkerError } from '../../helpers/runtime/workers';

/** Every case, on SQLite files or on PostgreSQL schemas of the test run's server. */
export function multiprocessCases(kind: 'sqlite' | 'postgres'): void {
  const sqliteOnly = kind === 'sqlite' ? test : test.skip;
  const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
  const recs = (p: string, n: number, from = 0): RecMsg[] =>
    range(n, from).map((i) => ({ type: 'rec', p, i }));

  const tmp = tempDir();
  // Inside the project, so that the workers' imports resolve to its node_modules.
  const jsDir = path.resolve(__dirname, '../../../.test-tmp', `mp-${kind}-${process.pid}`);
  let script: string;
  /** Workers forked by one test (victims); kill -9'ed after it. */
  let workers: Workers;
  /** Workers shared by all tests. */
  const shared = new Workers();
  let pool: Worker[] = [];
  let backends: Backend[] = [];
  let dbCount = 0;

  const pgUrl = process.env.DGEN_TEST_POSTGRES_URL;
  const schemas: string[] = [];

  /**
   * A fresh SQLite file (or PostgreSQL schema: `db` is then `postgres://…#schema`, see worker.ts) for one
   * test, its tenant opened in this (the Jest) process too.
   */
  async function freshDb(): Promise<{ db: string; tenant: Tenant }> {
    if (kind === 'postgres') {
      const schema = freshSchema();
      schemas.push(schema);
      const backend = await openBackend(pgUrl!, { postgres: { schema, poolSize: 4 } });
      backends.push(backend);
      return { db: `${pgUrl}#${schema}`, tenant: await backend.openTenant(['mp']) };
    }
    const db = tmp.file(`t${++dbCount}.sqlite`);
    const backend = await openSqlite(db);
    backends.push(backend);
    return { db, tenant: await backend.openTenant(['mp']) };
  }

  /** The stored state, read from this process through a ref that does not consume. */
  async function stateOf(tenant: Tenant): Promise<LedgerState> {
    const ref = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
    try {
      return await ref.readState();
    } finally {
      await ref.stop();
    }
  }

  /** How many keys of waiting calls (pending markers, reply chunks) the Ledger server holds. */
  async function waitingCallKeys(tenant: Tenant): Promise<number> {
    const { start, end } = prefixRange(['dgen_server', 'mp-ledger', 'w']);
    return tenant.read(async (tx) => (await tx.getRange(start, end)).length);
  }

  beforeAll(async () => {
    // Plain JavaScript: a worker starts in a fraction of a second instead of compiling as it loads
    // (with six of them starting at once on a loaded machine, ts-node took more than 30 s).
    script = transpileTree(
      ['src', 'test/helpers/runtime'],
      jsDir,
    )(path.resolve(__dirname, '../../helpers/runtime/worker.ts'));
    pool = await Promise.all([1, 2, 3].map(() => shared.spawn({ script })));
  }, 60_000);

  beforeEach(() => {
    workers = new Workers();
  });

  afterEach(async () => {
    await workers.killAll();
    await Promise.all(pool.map((w) => w.reset()));
    await Runtime.stopAll();
    await Promise.all(backends.map((b) => b.close()));
    backends = [];
  });

  afterAll(async () => {
    await shared.killAll();
    tmp.dispose();
    fs.rmSync(jsDir, { recursive: true, force: true });
    for (const schema of schemas) await dropSchema(pgUrl!, schema);
  });

  test('a publisher process (consume: false) casts and calls; a consumer process handles everything', async () => {
    const { db, tenant } = await freshDb();
    const [pub, con] = pool;
    await pub.rpc('start', { db, ref: 'l', server: 'Ledger', opts: { consume: false } });
    await con.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });

    await pub.rpc('castSeq', { ref: 'l', msgs: recs('pub', 50) });
    // A call from the publisher: it goes through the durable queue and the consumer process answers it.
    expect(await pub.rpc('call', { ref: 'l', msg: { type: 'add', by: 1000 } })).toBe(1050);

    const s = await stateOf(tenant);
    expect(s.count).toBe(51);
    expect(s.log.pub).toEqual(range(50));
    await waitUntil(
      async () => con.count('handled'),
      (n) => n === 51,
    );
    expect(pub.count('handled')).toBe(0); // the publisher handled nothing itself
  });

  test('three consumer processes and 300 casts: the state is exactly 300, each message handled once', async () => {
    const { db, tenant } = await freshDb();
    const consumers = pool;
    await Promise.all(consumers.map((c) => c.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} })));

    const pub = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
    for (const m of recs('jest', 300)) await pub.cast(m); // 300 separate casts, consumers draining meanwhile

    const s = await waitUntil(
      () => pub.readState(),
      (st) => st.count >= 300,
      30_000,
    );
    expect(s.count).toBe(300);
    expect(s.total).toBe(300);
    expect(s.log.jest).toEqual(range(300)); // one producer: handled in its order, none twice, none lost
    expect(await pub.queueLength()).toBe(0);
    // Every handling that committed was reported by exactly one consumer.
    await waitUntil(
      async () => consumers.reduce((n, c) => n + c.count('handled', 'cast'), 0),
      (n) => n === 300,
    );
  });

  test('kill -9 of a consumer inside a transaction loses nothing: another consumer finishes, the count is exact', async () => {
    const { db, tenant } = await freshDb();
    // The victim stalls inside the transaction of the first message with i >= 60 (handled, not committed).
    const victim = await workers.spawn({ script, db, env: { DGEN_STALL_FROM: '60' } });
    const survivor = pool[0];
    await victim.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });

    const pub = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
    const all = recs('jest', 200);
    const publishing = (async () => {
      for (let i = 0; i < all.length; i += 20) await pub.castMany(all.slice(i, i + 20));
    })();

    const stalled = await victim.waitFor((m) => m.type === 'stalling', 15_000, 'stall');
    expect(stalled.i).toBe(60);
    await victim.kill9(); // mid-stream, while it holds SQLite's write lock in the middle of handling message 60
    await survivor.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });
    await publishing;

    const s = await waitUntil(
      () => pub.readState(),
      (st) => st.count >= 200,
      30_000,
    );
    expect(s.count).toBe(200);
    expect(s.log.jest).toEqual(range(200)); // message 60 was redone by the survivor, exactly once
    expect(await pub.queueLength()).toBe(0);
  });

  test('kill -9 of one of two racing consumers at an arbitrary moment: no message lost or doubled', async () => {
    const { db, tenant } = await freshDb();
    const [a, b] = [await workers.spawn({ script, db }), pool[0]];
    await Promise.all([a, b].map((c) => c.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} })));
    const pub = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
    const all = recs('jest', 200);
    for (let i = 0; i < all.length; i += 50) await pub.castMany(all.slice(i, i + 50));

    await waitUntil(
      () => pub.readState(),
      (st) => st.count >= 40,
      15_000,
      1,
    );
    await a.kill9(); // wherever it is: idle, reading, or between handler and commit

    const s = await waitUntil(
      () => pub.readState(),
      (st) => st.count >= 200,
      30_000,
    );
    expect(s.count).toBe(200);
    expect(s.log.jest).toEqual(range(200));
  });

  test('a lock holder killed with kill -9 inside @OnLocked: the server resumes once its lease (500 ms) runs out', async () => {
    const { db, tenant } = await freshDb();
    const holder = await workers.spawn({ script, db, env: { DGEN_HANG_LOCKED: '1' } });
    await holder.rpc('start', { db, ref: 'l', server: 'Ledger', opts: { lockLeaseMs: 500 } });

    const pub = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
    await pub.cast({ type: 'slow' });
    await holder.waitFor((m) => m.type === 'locked', 10_000, '@OnLocked');
    await pub.cast({ type: 'rec', p: 'jest', i: 0 }); // queued behind the lock

    // A second consumer, here, with the same short lease: it must wait while the holder lives.
    const consumer = await Runtime.start<LedgerState>(Ledger, null, { tenant, lockLeaseMs: 500 });
    const events: ServerEvent[] = [];
    consumer.events$.subscribe((e) => events.push(e));
    await new Promise((r) => setTimeout(r, 1200)); // more than two leases: the live holder keeps renewing
    expect(await pub.queueLength()).toBe(1);
    expect((await pub.readState()).count).toBe(0);

    await holder.kill9();
    const killedAt = Date.now();
    const s = await waitUntil(
      () => pub.readState(),
      (st) => st.log.jest?.length === 1,
      5000,
      10,
    );
    const resumedAfter = Date.now() - killedAt;
    expect(s.log.jest).toEqual([0]);
    expect(resumedAfter).toBeLessThan(500 + 2000); // the default lease would be 30 s
    expect(events.some((e) => e.type === 'lock-expired')).toBe(true);
    expect(await pub.queueLength()).toBe(0);
  });

  test('a call from a process whose server does not consume times out; a consumer started later applies it', async () => {
    const { db, tenant } = await freshDb();
    const caller = pool[0];
    await caller.rpc('start', { db, ref: 'l', server: 'Ledger', opts: { consume: false } });

    const err = await caller
      .rpc('call', { ref: 'l', msg: { type: 'add', by: 7 }, timeout: 300 })
      .catch((e: WorkerError) => e);
    expect((err as WorkerError).code).toBe('CALL_TIMEOUT');
    expect(await caller.rpc('queueLength', { ref: 'l' })).toBe(1); // the call is still queued, durably
    expect((await stateOf(tenant)).total).toBe(0);

    const consumer = pool[1];
    await consumer.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });
    const s = await waitUntil(
      () => stateOf(tenant),
      (st) => st.total === 7,
      10_000,
    );
    expect(s.count).toBe(1);
    // The caller cleared its reply keys when it gave up, so the late handling wrote no reply.
    expect(await waitingCallKeys(tenant)).toBe(0);
    // And now the same caller's calls are answered across processes.
    expect(await caller.rpc('call', { ref: 'l', msg: { type: 'add', by: 1 } })).toBe(8);
    expect(await caller.rpc('queueLength', { ref: 'l' })).toBe(0);
    // The caller took its reply without a commit; its next push clears its key (the marker, which holds
    // a reply this small: see CallChannel.answer).
    expect(await waitingCallKeys(tenant)).toBe(1);
    await caller.rpc('cast', { ref: 'l', msg: { type: 'rec', p: 'x', i: 0 } });
    expect(await waitingCallKeys(tenant)).toBe(0);
  });

  /*
   * A caller killed while it waits never clears its from-keys. Its id carries its deadline, so
   * the consumer that handles the call long past that deadline clears the keys instead of answering,
   * and consumers sweep such keys when they find the queue empty (CallChannel.sweep).
   */
  test('the reply keys of a caller killed while waiting do not outlive its timeout', async () => {
    const { db, tenant } = await freshDb();
    const caller = await workers.spawn({ script, db });
    await caller.rpc('start', { db, ref: 'l', server: 'Ledger', opts: { consume: false } });
    void caller.rpc('call', { ref: 'l', msg: { type: 'add', by: 7 }, timeout: 800 }).catch(() => undefined);
    await waitUntil(
      () => caller.rpc<number>('queueLength', { ref: 'l' }),
      (n) => n === 1,
    );
    await caller.kill9(); // dies waiting for its reply
    await new Promise((r) => setTimeout(r, 3000)); // its deadline (800 ms) + ABANDONED_AFTER_MS have passed

    const consumer = pool[0];
    await consumer.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });
    await waitUntil(
      () => stateOf(tenant),
      (st) => st.total === 7,
      10_000,
    ); // at-least-once: the call itself is still handled
    await consumer.rpc('call', { ref: 'l', msg: 'get' }); // and the consumer has moved on
    expect(await waitingCallKeys(tenant)).toBe(0);
  });

  test('FIFO across two producer processes: each producer’s messages are handled in the order it sent them', async () => {
    const { db, tenant } = await freshDb();
    const [pa, pb, con] = pool;
    await Promise.all(
      [pa, pb].map((p) => p.rpc('start', { db, ref: 'l', server: 'Ledger', opts: { consume: false } })),
    );
    await con.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });

    await Promise.all([
      pa.rpc('castSeq', { ref: 'l', msgs: recs('A', 100) }),
      pb.rpc('castSeq', { ref: 'l', msgs: recs('B', 100) }),
    ]);
    const s = await waitUntil(
      () => stateOf(tenant),
      (st) => st.count >= 200,
      20_000,
    );
    expect(s.count).toBe(200);
    expect(s.log.A).toEqual(range(100));
    expect(s.log.B).toEqual(range(100));
  });

  /*
   * A regression guard: a commit by another process must wake watches through its file event, not the
   * 50 ms fallback poll. (The first file event of a commit comes from its WAL write, before SQLite
   * publishes the commit in the -shm index, which raises no event; the watcher must look again shortly.)
   * A cross-process call depends on it twice: the consumer's wake-up and the caller's.
   */
  sqliteOnly(
    'cross-process calls are answered promptly, not at the 50 ms pace of the watch poll',
    async () => {
      const { db, tenant } = await freshDb();
      const con = pool[0];
      await con.rpc('start', { db, ref: 'l', server: 'Ledger', opts: {} });
      const caller = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
      for (let i = 0; i < 5; i++) await caller.call('get');
      const times: number[] = [];
      for (let i = 0; i < 60; i++) {
        const t0 = performance.now();
        await caller.call('get');
        times.push(performance.now() - t0);
      }
      // Healthy: a few ms each. Missing the file event: typically 20–55 of 60 take ≥ 40 ms.
      expect(times.filter((t) => t >= 40).length).toBeLessThanOrEqual(6);
    },
  );
}
