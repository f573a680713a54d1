/**
 * Commits per durable call across processes, counted (not guessed): the caller (this Jest process) and
 * the consumer (a worker process) each wrap their backend in a CountingBackend.
 */
import 'reflect-metadata';
import type { Backend } from '../../../src/backend/types';
import { Runtime } from '../../../src/facade/runtime';
import { countingBackend, type CommitCounts } from '../../helpers/runtime/counting-backend';
import { Ledger, type LedgerState } from '../../helpers/runtime/servers';
import { openSqlite, tempDir } from '../../helpers/runtime/sqlite';
import { waitUntil, Workers } from '../../helpers/runtime/workers';

const tmp = tempDir();
const workers = new Workers();
let backend: (Backend & { readonly counts: CommitCounts }) | undefined;

afterAll(async () => {
  await Runtime.stopAll();
  await backend?.close();
  await workers.killAll();
  tmp.dispose();
});

test('a call to a server consumed in another process costs two commits, one of them flushed: the push, and the handling with its reply', async () => {
  const db = tmp.file('commits.sqlite');
  backend = countingBackend(await openSqlite(db));
  const tenant = await backend.openTenant(['mp']);
  const consumer = await workers.spawn({ db, env: { DGEN_COUNT_COMMITS: '1' } });
  await consumer.rpc('start', { ref: 'l', server: 'Ledger', opts: {} });
  const caller = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
  for (let i = 0; i < 5; i++) await caller.call({ type: 'add', by: 1 }); // warm up

  const total = async () => {
    const theirs = await consumer.rpc<CommitCounts>('commits');
    return {
      writes: backend!.counts.writes + theirs.writes,
      readOnly: backend!.counts.readOnly + theirs.readOnly,
      deferred: backend!.counts.deferred + theirs.deferred,
      consumerReads: theirs.reads,
    };
  };
  const before = await total();
  const callerReads = backend.counts.reads;
  const calls = 40;
  for (let i = 0; i < calls; i++) {
    // Alternately a call that changes the state and one that only reads it.
    if (i % 2 === 0) expect(await caller.call({ type: 'add', by: 1 })).toBe(6 + i / 2);
    else expect((await caller.call<LedgerState>('get')).count).toBe(6 + (i - 1) / 2);
  }
  const after = await total();
  const writes = after.writes - before.writes;
  const readOnly = after.readOnly - before.readOnly;
  expect((writes + readOnly) / calls).toBeLessThanOrEqual(2);
  expect(writes).toBe(2 * calls);
  // Only the handling is flushed: the push defers its flush to it (TransactOptions.deferFlush).
  expect(after.deferred - before.deferred).toBe(calls);
  // Nor does the caller read its reply: it comes in the marker's value, with the watch that fired.
  expect(backend.counts.reads - callerReads).toBe(0);
  // And the consumer, woken for each call, reads its batch in the transaction that handles it (a fused
  // step, see fusesStep), not from a snapshot before: every time, but after a handling that took over
  // QUICK_PLAN_MS (a GC pause, or a busy machine: it happened once in 40 under a full test run), whose
  // next step goes the usual way. Without fused steps, it would be one read per call.
  expect(after.consumerReads - before.consumerReads).toBeLessThanOrEqual(calls / 8);
}, 60_000);

test('casts are flushed when pushed (acknowledged) and handled without a flush of their own: their handling acknowledges nothing', async () => {
  const db = tmp.file('cast-commits.sqlite');
  const counted = countingBackend(await openSqlite(db));
  try {
    const tenant = await counted.openTenant(['mp']);
    const consumer = await workers.spawn({ db, env: { DGEN_COUNT_COMMITS: '1' } });
    await consumer.rpc('start', { ref: 'l', server: 'Ledger', opts: {} });
    const caster = await Runtime.start<LedgerState>(Ledger, null, { tenant, consume: false });
    await caster.call({ type: 'add', by: 0 }); // the consumer is up
    const theirsBefore = await consumer.rpc<CommitCounts>('commits');
    const oursBefore = { ...counted.counts };
    const casts = 30;
    for (let i = 0; i < casts; i++) await caster.cast({ type: 'rec', p: 'a', i });
    // The casts handled before the call is pushed: else, on a quick machine, a consumer that woke late
    // could take them all in the call's own handling, and no handling of casts alone would be counted.
    await waitUntil(
      () => caster.queueLength(),
      (n) => n === 0,
    );
    // A call after the casts: it is handled after them (FIFO), so they are all handled when it returns.
    expect(await caster.call({ type: 'add', by: 0 })).toBe(casts);
    const theirs = await consumer.rpc<CommitCounts>('commits');
    // This process: every cast's push flushed, then the call's push deferred.
    expect(counted.counts.writes - oursBefore.writes).toBe(casts + 1);
    expect(counted.counts.deferred - oursBefore.deferred).toBe(1);
    // The consumer: every handling of casts deferred its flush; the call's handling (its reply) did not.
    const handlings = theirs.writes - theirsBefore.writes;
    expect(handlings).toBeGreaterThanOrEqual(2);
    expect(theirs.deferred - theirsBefore.deferred).toBe(handlings - 1);
    // And the consumer's state is what every cast made of it, as read back from the file.
    expect((await caster.call<LedgerState>('get')).log.a).toEqual(Array.from({ length: casts }, (_, i) => i));
  } finally {
    await Runtime.stopAll();
    await counted.close();
  }
}, 60_000);
