import 'reflect-metadata';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import type { Backend, Tenant } from '../../src/backend/types';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { noreply, ok, reply } from '../../src/returns';
import { defaultMaxBatch } from '../../src/runtime/batch-window';
import type { ServerEvent } from '../../src/runtime/events';
import { Runtime } from '../../src/facade/runtime';
import { ActionEcho, closeGate, Counter, lockGate, Locker, Poison } from './fixtures';
import { runtimeBackends, waitFor } from './backends';

/**
 * A consumer takes up to maxBatch queued messages (default: defaultMaxBatch of its backend) in one
 * transaction. These tests queue messages with a consume:false publisher first, so the consumer finds a
 * deep queue, and check that batching changes nothing a user can see: order, exact counts, failure
 * accounting, lock and stop boundaries.
 */

/** Fails the first time it sees each `n` in `flaky` (a test hook: real handlers have no side effects). */
const seen = new Set<number>();
@DurableServer({ name: 'flaky' })
class Flaky {
  @Init() init() {
    return ok({ handled: [] as number[] });
  }
  @OnCast('item') item(m: { n: number; flaky?: boolean }, s: { handled: number[] }) {
    if (m.flaky && !seen.has(m.n)) {
      seen.add(m.n);
      throw new Error(`transient failure on ${m.n}`);
    }
    return noreply({ handled: [...s.handled, m.n] });
  }
  @OnCall('get') get(_m: unknown, _f: unknown, s: unknown) {
    return reply(s, s);
  }
}

/** Replies as large as asked; a state that cannot be stored on request. */
@DurableServer({ name: 'big' })
class Big {
  @Init() init() {
    return ok(0);
  }
  @OnCall('blob') blob(m: { size: number }, _f: unknown, n: number) {
    return reply(Buffer.alloc(m.size, 7), n + 1);
  }
  @OnCast('unstorable') unstorable(_m: unknown, n: number) {
    return noreply({ n, later: () => n } as unknown as number);
  }
  @OnCast('incr') incr(_m: unknown, n: number) {
    return noreply(typeof n === 'number' ? n + 1 : n); // keeps an unstorable state unstorable
  }
  @OnCall('slow') async slow(_m: unknown, _f: unknown, n: number) {
    await new Promise((r) => setTimeout(r, 5_300)); // past the 5 s transaction limit
    return reply('late', n);
  }
}

const count = (events: ServerEvent[], type: ServerEvent['type']) =>
  events.filter((e) => e.type === type).length;

describe.each(runtimeBackends)('batched consumption on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  let n = 0;

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['batch', String(++n)]);
    seen.clear();
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  // castMany pushes in one transaction, so an idle consumer wakes to find the whole queue at once.
  test('a deep queue is handled in fewer transactions than messages, with the exact result', async () => {
    const live = await Runtime.start(Counter, {}, { tenant });
    const events: ServerEvent[] = [];
    live.events$.subscribe((e) => events.push(e));
    await live.castMany(Array.from({ length: 100 }, () => 'incr'));
    await waitFor(() => count(events, 'handled') === 100);
    expect(await live.readState()).toBe(100);
    // one state write (and one 'committed') per batch of at most maxBatch (this backend's default) messages
    expect(count(events, 'committed')).toBeGreaterThanOrEqual(Math.ceil(100 / defaultMaxBatch(backend.kind)));
    expect(count(events, 'committed')).toBeLessThan(100);
  });

  test('maxBatch: 1 handles each message in a transaction of its own', async () => {
    const live = await Runtime.start(Counter, {}, { tenant, maxBatch: 1 });
    const events: ServerEvent[] = [];
    live.events$.subscribe((e) => events.push(e));
    await live.castMany(Array.from({ length: 20 }, () => 'incr'));
    await waitFor(() => count(events, 'handled') === 20);
    expect(count(events, 'committed')).toBe(20);
    expect(await live.readState()).toBe(20);
  });

  test('a poison message deep in a batch: the others are handled in order, it is dead-lettered after exactly maxAttempts', async () => {
    const pub = await Runtime.start(Poison, undefined, { tenant, consume: false, maxAttempts: 3 });
    const items = Array.from({ length: 20 }, (_, i) => ({ type: 'item', n: i, poison: i === 12 }));
    await pub.castMany(items);
    const ref = await Runtime.start(Poison, undefined, { tenant, maxAttempts: 3 });
    const failed = firstValueFrom(
      ref.events$.pipe(
        filter((e) => e.type === 'handler-failed'),
        take(3),
        toArray(),
      ),
    );
    await waitFor(async () => (await ref.queueLength()) === 0);
    expect((await failed).map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3]);
    expect(await ref.call('get')).toEqual({ handled: items.filter((i) => !i.poison).map((i) => i.n) });
    expect(await ref.deadLetters()).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f]+$/),
        msg: items[12],
        error: expect.stringContaining('cannot handle 12'),
        attempts: 3,
      },
    ]);
  });

  test('a transient failure deep in a batch rolls the batch back; every message is applied exactly once, in order', async () => {
    const pub = await Runtime.start(Flaky, undefined, { tenant, consume: false });
    const items = Array.from({ length: 40 }, (_, i) => ({ type: 'item', n: i, flaky: i % 9 === 5 }));
    await pub.castMany(items);
    const ref = await Runtime.start(Flaky, undefined, { tenant });
    await waitFor(async () => (await ref.queueLength()) === 0);
    expect(await ref.call('get')).toEqual({ handled: items.map((i) => i.n) });
    expect(await ref.deadLetters()).toEqual([]);
  });

  test('a lock ends a batch: the messages after it wait for @OnLocked and see its result', async () => {
    closeGate();
    lockGate.entered = 0;
    const pub = await Runtime.start(Locker, undefined, { tenant, consume: false });
    await pub.castMany(['incr', 'lock_incr', 'incr', 'incr']);
    const ref = await Runtime.start(Locker, undefined, { tenant });
    await waitFor(() => lockGate.entered === 1);
    expect(await pub.readState()).toBe(1); // the first incr committed with the lock; the rest wait
    expect(await pub.queueLength()).toBe(2);
    lockGate.open();
    await waitFor(async () => (await ref.queueLength()) === 0);
    await waitFor(async () => (await ref.readState()) === 103);
  });

  test('a stop ends a batch: the messages after it stay queued', async () => {
    const pub = await Runtime.start(ActionEcho, undefined, { tenant, consume: false });
    await pub.castMany(['incr', 'stop', 'incr', 'incr']);
    const ref = await Runtime.start(ActionEcho, undefined, { tenant });
    expect(await ref.done).toBe('bye');
    expect(await pub.readState()).toBe(6);
    expect(await pub.queueLength()).toBe(2);
  });

  test('queued calls whose replies together pass the 10 MB transaction limit are all answered', async () => {
    const pub = await Runtime.start(Big, undefined, { tenant, consume: false, callTimeout: 30_000 });
    const calls = Array.from({ length: 12 }, () => pub.call<Buffer>({ type: 'blob', size: 1_000_000 }));
    await waitFor(async () => (await pub.queueLength()) === 12);
    await Runtime.start(Big, undefined, { tenant });
    const replies = await Promise.all(calls);
    expect(replies.map((r) => r.length)).toEqual(Array(12).fill(1_000_000));
    expect(await pub.readState()).toBe(12);
  });

  test('a message whose effects cannot be stored is dead-lettered after maxAttempts; the queue moves on', async () => {
    const pub = await Runtime.start(Big, undefined, { tenant, consume: false, maxAttempts: 2 });
    const tooBig = pub.call({ type: 'blob', size: 11_000_000 }).catch((e: unknown) => e);
    await waitFor(async () => (await pub.queueLength()) === 1);
    await pub.castMany(['incr', 'unstorable', 'incr']);
    const ref = await Runtime.start(Big, undefined, { tenant, maxAttempts: 2 });
    await waitFor(async () => (await ref.queueLength()) === 0, 15_000);
    expect(await tooBig).toMatchObject({ code: 'TRANSACTION_TOO_LARGE' });
    expect(await ref.readState()).toBe(2);
    const dead = await ref.deadLetters();
    expect(dead.map((d) => [d.msg, d.attempts])).toEqual([
      [{ type: 'blob', size: 11_000_000 }, 2],
      ['unstorable', 2],
    ]);
    expect(dead[1].error).toMatch(/later/);
  });

  test('a handler slower than the 5 s transaction limit: its caller gets TRANSACTION_TIMED_OUT, the queue moves on', async () => {
    const pub = await Runtime.start(Big, undefined, { tenant, consume: false, callTimeout: 20_000 });
    const slow = pub.call('slow').catch((e: unknown) => e);
    await waitFor(async () => (await pub.queueLength()) === 1);
    await pub.cast('incr');
    const ref = await Runtime.start(Big, undefined, { tenant, maxAttempts: 1 });
    expect(await slow).toMatchObject({ code: 'TRANSACTION_TIMED_OUT' });
    await waitFor(async () => (await ref.readState()) === 1);
    expect((await ref.deadLetters()).map((d) => d.msg)).toEqual(['slow']);
  }, 30_000);
});
