import 'reflect-metadata';
import type { Backend, Tenant } from '../../src/backend/types';
import { Runtime } from '../../src/facade/runtime';
import { pack, prefixRange } from '../../src/backend/keys';
import { CallChannel, ABANDONED_AFTER_MS } from '../../src/runtime/call-channel';
import { ServerKeys } from '../../src/runtime/server-keys';
import type { FromId } from '../../src/runtime/wire';
import { Counter } from './fixtures';
import { runtimeBackends, waitFor } from './backends';

/** Waiting-caller keys (pending markers, replies) must not outlive their caller. */
describe.each(runtimeBackends)('waiting-caller keys on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  const keys = new ServerKeys(['dgen_server', 'counter']);
  const waitingKeys = () =>
    tenant.read(async (tx) => (await tx.getRange(keys.waiting.start, keys.waiting.end)).length);

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['calls']);
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  test('a consumer finding the queue empty sweeps the keys of callers long past their deadline, and only those', async () => {
    const dead: FromId = [Date.now() - ABANDONED_AFTER_MS - 1000, 'dead-caller'];
    const alive: FromId = [Date.now() + 60_000, 'live-caller'];
    const forever = CallChannel.newFrom(Infinity);
    await tenant.transact(async (tx) => {
      for (const from of [dead, alive, forever]) CallChannel.open(tx, keys, from).cancel();
      await CallChannel.answer(tx, keys, alive, { ok: true, value: 1 }); // answered, never read
    });
    expect(await waitingKeys()).toBe(3); // three markers, one holding its reply
    await Runtime.start(Counter, {}, { tenant });
    await waitFor(async () => (await waitingKeys()) === 2);
    const left = await tenant.read((tx) => tx.getRange(keys.waiting.start, keys.waiting.end));
    expect(left.every((kv) => !kv.key.includes(Buffer.from('dead-caller')))).toBe(true);
  });

  test('a small reply goes in the marker, and the watch that fires hands it over without a read', async () => {
    const from = CallChannel.newFrom(60_000);
    const watch = await tenant.transact((tx) => CallChannel.open(tx, keys, from));
    await tenant.transact((tx) => CallChannel.answer(tx, keys, from, { ok: true, value: { n: 7 } }));
    expect(await watch.changed).toBe(true);
    expect(CallChannel.inlineReply(watch.seen?.value)).toEqual({ ok: true, value: { n: 7 } });
    expect(await waitingKeys()).toBe(1); // the marker alone
    // A read finds the same reply.
    const read = await tenant.read((tx) => CallChannel.readKeyed(tx, keys, from));
    expect(read).toEqual({ record: { ok: true, value: { n: 7 } }, keys: [keys.pendingMarker(from)] });
    // A reply longer than a value is chunked: the watch says the marker is ready, the reply is read.
    const other = CallChannel.newFrom(60_000);
    const w2 = await tenant.transact((tx) => CallChannel.open(tx, keys, other));
    const long = { ok: true as const, value: 'y'.repeat(150_000) };
    await tenant.transact((tx) => CallChannel.answer(tx, keys, other, long));
    expect(await w2.changed).toBe(true);
    expect(CallChannel.inlineReply(w2.seen?.value)).toBeUndefined();
    expect((await tenant.read((tx) => CallChannel.readKeyed(tx, keys, other)))?.record).toEqual(long);
  });

  test('a call answered long past its caller’s deadline writes no reply', async () => {
    const dead: FromId = [Date.now() - ABANDONED_AFTER_MS - 1000, 'dead-caller'];
    await tenant.transact(async (tx) => {
      CallChannel.open(tx, keys, dead).cancel();
      await CallChannel.answer(tx, keys, dead, { ok: true, value: 1 });
    });
    expect(await waitingKeys()).toBe(0);
  });
});

test('a caller’s keys, packed once per FromId, are the tuples the protocol names, for each server', () => {
  const servers = [new ServerKeys(['dgen_server', 'counter']), new ServerKeys(['c', 7, 'ü\u0000'])];
  for (const from of [CallChannel.newFrom(5000), CallChannel.newFrom(Infinity), [0, ''] as FromId]) {
    for (const keys of [...servers, ...servers]) {
      const at = [...keys.tuid, 'w', from[0], from[1]];
      expect(keys.pendingMarker(from)).toEqual(pack([...at, 'p']));
      expect(keys.replyChunk(from, 0)).toEqual(pack([...at, 'r', 0]));
      expect(keys.replyChunk(from, 70_000)).toEqual(pack([...at, 'r', 70_000]));
      expect(keys.fromRange(from)).toEqual(prefixRange(at));
    }
  }
});
