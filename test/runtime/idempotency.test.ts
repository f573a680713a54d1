import 'reflect-metadata';
import { FaultyBackend } from '../../src/backend/faulty/faulty-backend';
import { prefixRange } from '../../src/backend/keys';
import type { Backend, Tenant } from '../../src/backend/types';
import { Runtime } from '../../src/facade/runtime';
import { MAX_IDEMPOTENCY_KEY } from '../../src/runtime/idempotency';
import { runtimeBackends, waitFor } from './backends';
import { Counter } from './fixtures';

/** Idempotency keys: a keyed cast is enqueued once, a keyed call handled once, within the window. */
describe.each(runtimeBackends)('idempotency keys on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  const TUID = ['dgen_server', 'counter'];
  /** Stored key records and expiry entries of the counter. */
  const idemRows = async (part: 'k' | 'x') => {
    const { start, end } = prefixRange([...TUID, 'idem', part]);
    return (await tenant.read((tx) => tx.getRange(start, end))).length;
  };

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['idem']);
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  test('a repeated keyed cast (and castMany) is not enqueued again', async () => {
    const pub = await Runtime.start(Counter, {}, { tenant, consume: false });
    await pub.cast('incr', { idempotencyKey: 'a' });
    await pub.cast('incr', { idempotencyKey: 'a' });
    await pub.castMany(['incr', 'incr'], { idempotencyKey: 'batch' });
    await pub.castMany(['incr', 'incr', 'incr'], { idempotencyKey: 'batch' });
    await pub.cast('incr', { idempotencyKey: 'b' });
    await pub.cast('incr'); // no key: always enqueued
    await pub.cast('incr');
    expect(await pub.queueLength()).toBe(6);
    const consumer = await Runtime.start(Counter, {}, { tenant });
    await waitFor(async () => (await consumer.queueLength()) === 0);
    expect(await consumer.call('get')).toBe(6);
  });

  test('a repeated keyed call resolves with the first reply, handled once; large replies come back whole', async () => {
    const ref = await Runtime.start(Counter, {}, { tenant });
    expect(await ref.call('incr', { idempotencyKey: 'pay-1' })).toBe(1);
    expect(await ref.call('incr', { idempotencyKey: 'pay-1' })).toBe(1);
    expect(await ref.call('incr', { idempotencyKey: 'pay-2' })).toBe(2);
    expect(await ref.call('get')).toBe(2);
    const blob = (await ref.call<Buffer>(
      { type: 'blob', size: 250_000 },
      { idempotencyKey: 'big' },
    )) as Buffer;
    const again = (await ref.call<Buffer>({ type: 'blob', size: 1 }, { idempotencyKey: 'big' })) as Buffer;
    expect(again.length).toBe(250_000); // the first reply, from three chunks
    expect(Buffer.compare(again, blob)).toBe(0);
  });

  test('a repeat made while the first call is still queued gets the first reply when it is handled', async () => {
    const a = await Runtime.start(Counter, {}, { tenant, consume: false });
    const first = a.call('incr', { idempotencyKey: 'k', timeout: 10_000 });
    await waitFor(async () => (await a.queueLength()) === 1);
    const repeat = a.call('incr', { idempotencyKey: 'k', timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(await a.queueLength()).toBe(1); // the repeat is not queued
    await Runtime.start(Counter, {}, { tenant, name: 'consumer' });
    expect(await Promise.all([first, repeat])).toEqual([1, 1]);
    expect(await a.readState()).toBe(1);
  });

  test('a repeated call of a failing handler gets the first failure, without handling it again', async () => {
    const ref = await Runtime.start(Counter, {}, { tenant, maxAttempts: 1 });
    await expect(ref.call({ type: 'blob', size: -1 }, { idempotencyKey: 'bad' })).rejects.toMatchObject({
      code: 'HANDLER_FAILED',
    });
    await expect(ref.call('get', { idempotencyKey: 'bad' })).rejects.toMatchObject({
      code: 'HANDLER_FAILED',
    });
  });

  test('keys expire after the retention window, and later keyed publishes collect them', async () => {
    // A window long enough that no key expires while the ten are published (a remote backend is slower).
    const pub = await Runtime.start(Counter, {}, { tenant, consume: false, idempotencyRetentionMs: 1500 });
    for (let i = 0; i < 10; i++) await pub.cast('incr', { idempotencyKey: `old-${i}` });
    expect(await idemRows('k')).toBe(10);
    expect(await idemRows('x')).toBe(10);
    await new Promise((r) => setTimeout(r, 1600));
    await pub.cast('incr', { idempotencyKey: 'old-0' }); // expired: enqueued again
    expect(await pub.queueLength()).toBe(11);
    await pub.cast('incr', { idempotencyKey: 'new-1' });
    await pub.cast('incr', { idempotencyKey: 'new-2' });
    // Each keyed publish collected up to four expired keys: 10 expired, 3 publishes → all gone.
    expect(await idemRows('x')).toBe(3);
    expect(await idemRows('k')).toBe(3);
  });

  test('an expired call key is handled again', async () => {
    const ref = await Runtime.start(Counter, {}, { tenant, idempotencyRetentionMs: 100 });
    expect(await ref.call('incr', { idempotencyKey: 'c' })).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(await ref.call('incr', { idempotencyKey: 'c' })).toBe(2);
  });

  test('kill removes the keys with the rest of the server', async () => {
    const ref = await Runtime.start(Counter, {}, { tenant });
    await ref.call('incr', { idempotencyKey: 'x' });
    await ref.cast('incr', { idempotencyKey: 'y' });
    await ref.kill();
    expect(await idemRows('k')).toBe(0);
    expect(await idemRows('x')).toBe(0);
  });

  test('keyed publishes whose transactions are retried (injected conflicts) still enqueue and handle once per key', async () => {
    const faulty = new FaultyBackend(backend, { commitFailureRate: 0.3, when: 'both', seed: 13 });
    const t = await faulty.openTenant(['idem-faulty']);
    const consumer = await Runtime.start(Counter, {}, { tenant: t });
    const producer = await Runtime.start(Counter, {}, { tenant: t, consume: false, name: 'producer' });
    for (let i = 0; i < 40; i++) {
      await producer.cast('incr', { idempotencyKey: `cast-${i}` });
      await producer.cast('incr', { idempotencyKey: `cast-${i}` });
    }
    const replies: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      const first = await producer.call('incr', { idempotencyKey: `call-${i}` });
      replies.push([first, await producer.call('incr', { idempotencyKey: `call-${i}` })]);
    }
    await waitFor(async () => (await consumer.queueLength()) === 0, 20_000);
    expect(await consumer.call('get')).toBe(50);
    for (const [a, b] of replies as Array<[number, number]>) expect(b).toBe(a);
    expect(faulty.injectedFaults).toBeGreaterThan(10);
  });

  test('bad keys and misuse are BAD_ARGUMENT', async () => {
    const ref = await Runtime.start(Counter, {}, { tenant });
    const bad: unknown[] = ['', 'x'.repeat(MAX_IDEMPOTENCY_KEY + 1), 'a\uD800b', 42, null];
    for (const idempotencyKey of bad) {
      await expect(ref.cast('incr', { idempotencyKey } as never)).rejects.toMatchObject({
        code: 'BAD_ARGUMENT',
      });
      await expect(ref.call('get', { idempotencyKey } as never)).rejects.toMatchObject({
        code: 'BAD_ARGUMENT',
      });
    }
    await expect(ref.priorityCall('get', { idempotencyKey: 'p' })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    await ref.cast('incr', { idempotencyKey: 'shared' });
    await expect(ref.call('get', { idempotencyKey: 'shared' })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    await expect(ref.cast('incr', 'key' as never)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(await ref.call('get', { idempotencyKey: 'x'.repeat(MAX_IDEMPOTENCY_KEY) })).toBe(1);
  });

  test('a stopped ref rejects keyed publishes with STOPPED', async () => {
    const ref = await Runtime.start(Counter, {}, { tenant });
    await ref.stop();
    await expect(ref.cast('incr', { idempotencyKey: 'a' })).rejects.toMatchObject({ code: 'STOPPED' });
    await expect(ref.call('get', { idempotencyKey: 'a' })).rejects.toMatchObject({ code: 'STOPPED' });
  });
});
