/**
 * What a durable call or cast costs on PostgreSQL, in commits and round trips (issue #9's performance
 * goals, counted rather than timed): concurrent pushes of one process share a commit (PushGroup), a
 * message that cannot be stored fails only its own push, and a consumer handles a deep queue in a few
 * round trips per batch. Against the server of the test run (DGEN_TEST_POSTGRES_URL).
 */
import 'reflect-metadata';
import { filter, firstValueFrom } from 'rxjs';
import { openBackend } from '../../src/backend/open-backend';
import { postgresCounters } from '../../src/backend/postgres/counters';
import type { Backend, Tenant } from '../../src/backend/types';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { Runtime } from '../../src/facade/runtime';
import { noreply, ok, reply } from '../../src/returns';
import { MAX_BATCH, POSTGRES_MAX_BATCH } from '../../src/runtime/batch-window';
import { resolveOptions } from '../../src/runtime/options';
import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import { dropSchema, freshSchema } from '../helpers/backend/factories';

const URL = process.env.DGEN_TEST_POSTGRES_URL;
const suite = URL ? describe : describe.skip;

interface LogState {
  seen: number[];
}

@DurableServer({ name: 'pg-group-log' })
class Log {
  @Init() init(arg: { id: string }) {
    return ok<LogState>({ seen: [] }, ['pg-group-log', arg.id]);
  }
  @OnCast('rec') rec(m: { i: number }, s: LogState) {
    return noreply<LogState>({ seen: [...s.seen, m.i] });
  }
  @OnCall('rec') recCall(m: { i: number }, _from: unknown, s: LogState) {
    return reply(m.i, { seen: [...s.seen, m.i] });
  }
}

/** Runs of the slow handler (a test hook: real handlers have no side effects). */
let slowRuns = 0;

@DurableServer({ name: 'pg-group-slow' })
class Slow {
  @Init() init(arg: { id: string }) {
    return ok(0, ['pg-group-slow', arg.id]);
  }
  @OnCall('slow') async slow(m: { ms: number }, _from: unknown, n: number) {
    slowRuns++;
    await new Promise((r) => setTimeout(r, m.ms));
    return reply(n + 1, n + 1);
  }
}

const rec = (i: number, pad = '') => ({ type: 'rec', i, pad });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

suite('postgres: commits and round trips of pushes and consumers', () => {
  const schema = freshSchema();
  let backend: Backend;
  let tenant: Tenant;
  let id = 0;

  beforeAll(async () => {
    backend = await openBackend(URL!, { postgres: { schema, poolSize: 8 } });
    tenant = await backend.openTenant(['group']);
  });
  afterEach(() => Runtime.stopAll());
  afterAll(async () => {
    await backend.close();
    await dropSchema(URL!, schema);
  });

  test('32 concurrent casts of one process share commits, and are queued in the order they were made', async () => {
    const arg = { id: String(++id) };
    const publisher = await Runtime.start(Log, arg, { tenant, consume: false });
    const commits = postgresCounters.commits;
    await Promise.all(range(32).map((i) => publisher.cast(rec(i))));
    // The first goes alone (nothing in flight), the 31 made meanwhile together.
    expect(postgresCounters.commits - commits).toBeLessThanOrEqual(2);
    expect(await publisher.queueLength()).toBe(32);
    const consumer = await Runtime.start(Log, arg, { tenant });
    for (let i = 0; i < 500 && (await consumer.queueLength()) > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(((await consumer.readState()) as LogState).seen).toEqual(range(32));
  });

  test('a message too large to store fails only its own push, not the others sharing its transaction', async () => {
    const publisher = await Runtime.start(Log, { id: String(++id) }, { tenant, consume: false });
    const settled = await Promise.allSettled([
      publisher.cast(rec(0)),
      publisher.cast(rec(1)),
      publisher.cast(rec(2, 'x'.repeat(200_000))), // over the 100 kB value limit
      publisher.cast(rec(3)),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'VALUE_TOO_LARGE' });
    expect(await publisher.queueLength()).toBe(3);
  });

  test('16 concurrent calls from a non-consuming process: fewer commits than calls, every reply right', async () => {
    const arg = { id: String(++id) };
    await Runtime.start(Log, arg, { tenant });
    const caller = await Runtime.start(Log, arg, { tenant, consume: false });
    await caller.call(rec(-1)); // the caller's watcher is listening from here on
    const [trips, commits] = [postgresCounters.roundTrips, postgresCounters.commits];
    const replies = await Promise.all(range(16).map((i) => caller.call<number>(rec(i))));
    expect(replies).toEqual(range(16));
    // Pushes (first alone, then grouped) and consumer batches; one commit per call each side would be 32.
    expect(postgresCounters.commits - commits).toBeLessThan(16);
    // In all (pushes, the consumer here, the callers' reply reads, shared as well): fewer round trips
    // than calls. (Reading each reply alone made it 20 here.)
    expect(postgresCounters.roundTrips - trips).toBeLessThan(16);
  });

  test('a sequential call costs 3 round trips in all: the push, the consumer’s reads (its handler run in the same transaction) and its commit', async () => {
    const arg = { id: String(++id) };
    await Runtime.start(Log, arg, { tenant });
    const caller = await Runtime.start(Log, arg, { tenant, consume: false });
    await caller.call(rec(-1)); // the caller's watcher is listening from here on
    const trips = postgresCounters.roundTrips;
    for (let i = 0; i < 20; i++) expect(await caller.call<number>(rec(i))).toBe(i);
    // The caller takes its (small) reply from its watch: no read. A snapshot read before the consumer's
    // transaction, or a reply read, made it 4 or 5 per call. (Slack for a lease renewal or a re-read.)
    expect(postgresCounters.roundTrips - trips).toBeLessThanOrEqual(3 * 20 + 4);
  });

  test('a handler slower than a fused step allows finishes outside its transaction, run once, its reply right', async () => {
    const arg = { id: String(++id) };
    await Runtime.start(Slow, arg, { tenant });
    const caller = await Runtime.start(Slow, arg, { tenant, consume: false });
    slowRuns = 0;
    expect(await caller.call({ type: 'slow', ms: 1 })).toBe(1);
    expect(await caller.call({ type: 'slow', ms: 60 })).toBe(2);
    expect(await caller.call({ type: 'slow', ms: 1 })).toBe(3);
    expect(slowRuns).toBe(3);
  });

  test('maxBatch defaults to 128 on PostgreSQL (32 elsewhere); an explicit maxBatch still wins', async () => {
    expect(resolveOptions({ tenant }).maxBatch).toBe(POSTGRES_MAX_BATCH);
    expect(resolveOptions({ tenant, maxBatch: 5 }).maxBatch).toBe(5);
    const memory = new MemoryBackend();
    try {
      expect(resolveOptions({ tenant: await memory.openTenant(['m']) }).maxBatch).toBe(MAX_BATCH);
    } finally {
      await memory.close();
    }
  });

  test('a consumer drains a deep queue in two round trips per batch of maxBatch messages (PostgreSQL default)', async () => {
    const arg = { id: String(++id) };
    const n = 6 * POSTGRES_MAX_BATCH;
    const publisher = await Runtime.start(Log, arg, { tenant, consume: false });
    await publisher.castMany(range(n).map((i) => rec(i)));
    const [trips, commits] = [postgresCounters.roundTrips, postgresCounters.commits];
    const consumer = await Runtime.start(Log, arg, { tenant });
    let handled = 0;
    const done = firstValueFrom(
      consumer.events$.pipe(filter((e) => e.type === 'handled' && ++handled === n)),
    );
    await done;
    const batches = postgresCounters.commits - commits - 1; // less the start's own transaction
    // (Batches may be cut short by handler time on a loaded machine: counted, not assumed.)
    expect(batches).toBeLessThan(n / 4);
    // Per batch: the transaction's reads (with the next batch's items, so no snapshot read before it)
    // and COMMIT; a few more for the start. (It was one round trip per read, and one more per message
    // for the idle timeout's key; then 3 per batch before the next batch was read ahead.)
    expect(postgresCounters.roundTrips - trips).toBeLessThanOrEqual(2 * batches + 8);
    expect(((await consumer.readState()) as LogState).seen).toEqual(range(n));
  });
});
