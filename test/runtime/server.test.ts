import 'reflect-metadata';
import { firstValueFrom, filter, toArray, take } from 'rxjs';
import type { Backend, Tenant } from '../../src/backend/types';
import { DurableServer, OnCall, OnCast } from '../../src/decorators';
import { reply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';
import type { ServerEvent } from '../../src/runtime/events';
import { actionLog, ActionEcho, closeGate, Counter, lockGate, Locker, Poison } from './fixtures';
import { runtimeBackends, waitFor } from './backends';

describe.each(runtimeBackends)('durable server on %s', (_name, make) => {
  let backend: Backend;
  let tenant: Tenant;
  let cleanup: () => Promise<void>;
  let n = 0;

  beforeEach(async () => {
    ({ backend, cleanup } = await make());
    tenant = await backend.openTenant(['rt', String(++n)]);
    actionLog.length = 0;
    lockGate.entered = 0;
    lockGate.release = Promise.resolve();
  });
  afterEach(async () => {
    await Runtime.stopAll();
    await cleanup();
  });

  describe('basic (upstream dgen_server_test)', () => {
    test('count from 0 to 1 across three processes of one server', async () => {
      const a = await Runtime.start(Counter, {}, { tenant });
      const b = await Runtime.start(Counter, {}, { tenant });
      expect(await a.call('get')).toBe(0);
      expect(await b.call('get')).toBe(0);
      await a.cast('incr');
      await waitFor(async () => (await b.call('get')) === 1);
      expect(await a.call('get')).toBe(1);
      const c = await Runtime.start(Counter, {}, { tenant });
      expect(await c.call('get')).toBe(1);
      expect(a.tuid).toEqual(['dgen_server', 'counter']);
    });

    test('two counters with their own tuids are independent', async () => {
      const x = await Runtime.start(Counter, { id: 'x' }, { tenant });
      const y = await Runtime.start(Counter, { id: 'y' }, { tenant });
      await x.cast('incr');
      await waitFor(async () => (await x.call('get')) === 1);
      expect(await y.call('get')).toBe(0);
      expect(x.tuid).toEqual(['counter', 'x']);
    });

    test('many casts', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant });
      for (let i = 0; i < 100; i++) await ref.cast('incr');
      await waitFor(async () => (await ref.queueLength()) === 0);
      expect(await ref.call('get')).toBe(100);
      expect(await ref.readState()).toBe(100);
    });

    test('a reply spanning many chunks (1 MB), queued and inline', async () => {
      const consumer = await Runtime.start(Counter, {}, { tenant });
      const inline = await consumer.call<Buffer>({ type: 'blob', size: 1_000_000 });
      expect(inline.length).toBe(1_000_000);
      expect(inline.every((b) => b === 7)).toBe(true);
      const publisher = await Runtime.start(Counter, {}, { tenant, consume: false });
      const queued = await publisher.call<Buffer>({ type: 'blob', size: 250_000 });
      expect(Buffer.compare(queued, Buffer.alloc(250_000, 7))).toBe(0);
    });

    test('kill deletes state, queue and waiting keys; a new start begins afresh', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant });
      await ref.cast('incr');
      await waitFor(async () => (await ref.call('get')) === 1);
      await ref.kill('gone');
      await expect(ref.done).resolves.toBe('gone');
      const rows = await tenant.read((tx) => tx.getRange(Buffer.from([0x00]), Buffer.from([0xff])));
      expect(rows).toEqual([]);
      const again = await Runtime.start(Counter, {}, { tenant });
      expect(await again.call('get')).toBe(0);
    });

    test('castMany is atomic: a batch with an oversized message enqueues nothing', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant, consume: false });
      await expect(
        ref.castMany(['incr', { type: 'add', by: 1, pad: Buffer.alloc(200_000) }]),
      ).rejects.toMatchObject({
        code: 'VALUE_TOO_LARGE',
      });
      expect(await ref.queueLength()).toBe(0);
      await ref.castMany(['incr', 'incr', { type: 'add', by: 10 }]);
      expect(await ref.queueLength()).toBe(3);
      const consumer = await Runtime.start(Counter, {}, { tenant });
      await waitFor(async () => (await consumer.queueLength()) === 0);
      expect(await consumer.call('get')).toBe(12);
    });

    test('FIFO across two producers', async () => {
      const consumer = await Runtime.start(Counter, {}, { tenant, consume: false });
      const p1 = await Runtime.start(Counter, {}, { tenant, consume: false });
      const p2 = await Runtime.start(Counter, {}, { tenant, consume: false });
      const order: string[] = [];
      for (let i = 0; i < 20; i++) {
        const by = i;
        await (i % 2 ? p1 : p2).cast({ type: 'add', by });
        order.push(String(by));
      }
      expect(await consumer.queueLength()).toBe(20);
      const rows = await tenant.read((tx) => tx.getRange(Buffer.from([0x00]), Buffer.from([0xff])));
      const { decodeWire } = await import('../../src/runtime/wire');
      const queued = rows
        .map((r) => {
          try {
            return decodeWire<{ kind: string; msg: { by: number } }>(r.value);
          } catch {
            return undefined;
          }
        })
        .filter((v): v is { kind: string; msg: { by: number } } => v?.kind === 'cast')
        .map((v) => String(v.msg.by));
      expect(queued).toEqual(order);
    });
  });

  describe('actions (upstream dgen_server_actions_test)', () => {
    test('run after commit for cast, call, info, priority call and priority cast', async () => {
      const ref = await Runtime.start(ActionEcho, undefined, { tenant });
      await ref.cast('incr');
      await waitFor(() => actionLog.some(([w]) => w === 'cast'));
      expect(actionLog).toContainEqual(['cast', 1]);
      expect(await ref.call('get')).toBe(1);
      expect(actionLog).toContainEqual(['call', 1]);
      ref.send('tick');
      await waitFor(() => actionLog.some(([w]) => w === 'info'));
      expect(actionLog).toContainEqual(['info', 2]);
      expect(await ref.priorityCall('get')).toBe(2);
      await ref.priorityCast('incr');
      expect(actionLog).toContainEqual(['cast', 3]);
    });

    test("'halt' stops the rest; a throwing action stops the rest and is reported", async () => {
      const ref = await Runtime.start(ActionEcho, undefined, { tenant });
      const failed = firstValueFrom(ref.events$.pipe(filter((e) => e.type === 'action-failed')));
      await ref.priorityCast('halting');
      expect(actionLog.map(([w]) => w)).toEqual(['first']);
      await ref.priorityCast('throwing');
      expect(((await failed) as { error: Error }).error.message).toBe('action boom');
      expect(actionLog.map(([w]) => w)).toEqual(['first']);
      expect(await ref.call('get')).toBe(0);
    });
  });

  describe('cache (upstream dgen_server_cache_test)', () => {
    test.each([true, false])(
      'cache=%s: sequential casts and restarts read the right state',
      async (cache) => {
        const a = await Runtime.start(Counter, {}, { tenant, cache });
        for (let i = 1; i <= 10; i++) {
          await a.cast('incr');
          await waitFor(async () => (await a.call('get')) === i);
        }
        await a.stop();
        const b = await Runtime.start(Counter, {}, { tenant, cache });
        expect(await b.call('get')).toBe(10);
      },
    );

    test("two consumers see each other's writes via version invalidation", async () => {
      const a = await Runtime.start(Counter, {}, { tenant });
      const b = await Runtime.start(Counter, {}, { tenant });
      expect(await a.call('incr')).toBe(1);
      expect(await b.call('incr')).toBe(2);
      expect(await a.call('incr')).toBe(3);
      expect(await b.call('get')).toBe(3);
    });

    test('reset re-initialises the stored state', async () => {
      const a = await Runtime.start(Counter, { start: 5 }, { tenant });
      await a.call('incr');
      await a.stop();
      const b = await Runtime.start(Counter, { start: 5 }, { tenant });
      expect(await b.call('get')).toBe(6);
      const c = await Runtime.start(Counter, { start: 5 }, { tenant, reset: true });
      expect(await c.call('get')).toBe(5);
    });
  });

  describe('inline call (upstream dgen_server_inline_call_test)', () => {
    test('an empty queue is skipped: the call runs in one transaction with no queue round trip', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant });
      const handled: ServerEvent[] = [];
      ref.events$.subscribe((e) => handled.push(e));
      expect(await ref.call('incr')).toBe(1);
      expect(await ref.queueLength()).toBe(0);
      expect(handled.filter((e) => e.type === 'handled')).toEqual([
        { type: 'handled', kind: 'call', ms: expect.any(Number) },
      ]);
      for (let i = 0; i < 20; i++) {
        if (i % 2) await ref.cast('incr');
        else await ref.call('incr');
      }
      await waitFor(async () => (await ref.queueLength()) === 0);
      expect(await ref.call('get')).toBe(21);
    });

    test('a throwing call handler on the inline path rejects with HANDLER_FAILED and the ref keeps working', async () => {
      const ref = await Runtime.start(Poison, undefined, { tenant });
      await expect(ref.call({ type: 'bad', n: 1 })).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
      expect(await ref.call('get')).toEqual({ handled: [] });
    });
  });

  describe('lock (upstream dgen_server_lock_test)', () => {
    test('lock → @OnLocked outside the transaction → result committed; casts wait behind the lock', async () => {
      closeGate();
      const ref = await Runtime.start(Locker, undefined, { tenant });
      const events: string[] = [];
      ref.events$.subscribe((e) => events.push(e.type));
      await ref.cast('lock_incr');
      await waitFor(() => lockGate.entered === 1);
      await ref.cast('incr');
      await ref.cast('incr');
      await new Promise((r) => setTimeout(r, 50));
      expect(await ref.queueLength()).toBe(2); // queued behind the lock
      expect(await ref.priorityCall('get')).toBe(0); // priority skips the lock
      lockGate.open();
      await waitFor(async () => (await ref.queueLength()) === 0);
      expect(await ref.call('get')).toBe(102);
      expect(events).toEqual(expect.arrayContaining(['lock-acquired', 'lock-released']));
    });

    test('a call that locks gets the @OnLocked reply (queued, inline and priority)', async () => {
      const ref = await Runtime.start(Locker, undefined, { tenant });
      expect(await ref.call('lock_get')).toEqual({ was: 0, kind: 'call' });
      expect(await ref.priorityCall('lock_get')).toEqual({ was: 100, kind: 'call' });
      const pub = await Runtime.start(Locker, undefined, { tenant, consume: false });
      expect(await pub.call('lock_get')).toEqual({ was: 200, kind: 'call' });
      expect(await ref.call('get')).toBe(300);
    });

    test('an inline call is queued while the server is locked, and answered after', async () => {
      closeGate();
      const ref = await Runtime.start(Locker, undefined, { tenant });
      await ref.cast('lock_incr');
      await waitFor(() => lockGate.entered === 1);
      const pending = ref.call('get');
      // Queued, not handled inline, however long the push takes on this backend (it fails by timing out).
      await waitFor(async () => (await ref.queueLength()) === 1);
      lockGate.open();
      expect(await pending).toBe(100);
    });

    test('the lock is cleared when @OnLocked throws', async () => {
      const ref = await Runtime.start(Locker, undefined, { tenant });
      const failed = firstValueFrom(ref.events$.pipe(filter((e) => e.type === 'handler-failed')));
      await ref.cast('lock_boom');
      await failed;
      await ref.cast('incr');
      await waitFor(async () => (await ref.call('get')) === 1);
    });
  });

  describe('stop (upstream dgen_server_stop_test)', () => {
    test('info stop runs actions and exits with its reason', async () => {
      const ref = await Runtime.start(ActionEcho, undefined, { tenant });
      ref.send('stop');
      await expect(ref.done).resolves.toBe('normal');
      expect(actionLog).toContainEqual(['stop', 0]);
    });

    test('queued cast stop: state persisted before actions, done resolves with the reason', async () => {
      const ref = await Runtime.start(ActionEcho, undefined, { tenant });
      await ref.cast('stop');
      await expect(ref.done).resolves.toBe('bye');
      expect(actionLog).toContainEqual(['stop', 5]);
      const again = await Runtime.start(ActionEcho, undefined, { tenant });
      expect(await again.call('get')).toBe(5);
    });

    test('inline and priority call stop', async () => {
      const a = await Runtime.start(ActionEcho, undefined, { tenant });
      await expect(a.call('stop')).rejects.toMatchObject({ code: 'STOPPED' });
      await expect(a.done).resolves.toBe('normal');
      const b = await Runtime.start(ActionEcho, undefined, { tenant });
      await expect(b.priorityCall('stop')).rejects.toMatchObject({ code: 'STOPPED' });
      expect(actionLog.filter(([w]) => w === 'stop')).toEqual([
        ['stop', 5],
        ['stop', 10],
      ]);
    });

    test('every method of a stopped ref rejects with STOPPED', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant, name: 'stopme' });
      expect(Runtime.whereis('stopme')).toBe(ref);
      await ref.stop();
      await expect(ref.done).resolves.toBe('normal');
      expect(Runtime.whereis('stopme')).toBeUndefined();
      for (const p of [
        ref.call('get'),
        ref.cast('incr'),
        ref.castMany(['incr']),
        ref.priorityCall('get'),
        ref.priorityCast('incr'),
        ref.readState(),
        ref.queueLength(),
        ref.kill(),
        ref.deadLetters(),
      ])
        await expect(p).rejects.toMatchObject({ code: 'STOPPED' });
      expect(() => ref.send('x')).toThrow(expect.objectContaining({ code: 'STOPPED' }));
    });
  });

  describe('beyond dgen: the queue never wedges', () => {
    test('a poison message is dead-lettered after maxAttempts while the messages after it are handled', async () => {
      const ref = await Runtime.start(Poison, undefined, { tenant, maxAttempts: 3 });
      const failures = ref.events$.pipe(
        filter((e) => e.type === 'handler-failed'),
        take(3),
        toArray(),
      );
      const failed = firstValueFrom(failures);
      await ref.castMany([
        { type: 'item', n: 1 },
        { type: 'item', n: 2, poison: true },
        { type: 'item', n: 3 },
      ]);
      await waitFor(async () => (await ref.queueLength()) === 0);
      expect(await ref.call('get')).toEqual({ handled: [1, 3] });
      expect((await failed).map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3]);
      const dead = await ref.deadLetters();
      expect(dead).toEqual([
        {
          id: expect.stringMatching(/^[0-9a-f]+$/),
          msg: { type: 'item', n: 2, poison: true },
          error: expect.stringContaining('cannot handle 2'),
          attempts: 3,
        },
      ]);
    });

    test('a queued call whose handler keeps failing rejects the caller with HANDLER_FAILED', async () => {
      const consumer = await Runtime.start(Poison, undefined, { tenant, maxAttempts: 2 });
      const pub = await Runtime.start(Poison, undefined, { tenant, consume: false });
      await expect(pub.call({ type: 'bad', n: 1 })).rejects.toMatchObject({
        code: 'HANDLER_FAILED',
        message: expect.stringContaining('call boom'),
      });
      expect(await consumer.deadLetters()).toHaveLength(1);
    });

    test('a consumer whose server another ref killed stops with NOT_FOUND at its next message', async () => {
      const killer = await Runtime.start(Counter, {}, { tenant });
      const other = await Runtime.start(Counter, {}, { tenant });
      await killer.kill('gone'); // state, queue and waiting keys deleted, as from another process
      await other.cast('incr');
      await expect(other.done).resolves.toMatchObject({ code: 'NOT_FOUND' });
    });

    test('a message with no handler: a call rejects with NO_HANDLER, a cast is dead-lettered, the queue moves on', async () => {
      const consumer = await Runtime.start(Counter, {}, { tenant });
      const pub = await Runtime.start(Counter, {}, { tenant, consume: false });
      await expect(pub.call({ type: 'nope' })).rejects.toMatchObject({ code: 'NO_HANDLER' });
      await expect(consumer.call({ type: 'nope' })).rejects.toMatchObject({ code: 'NO_HANDLER' });
      await pub.cast({ type: 'unknown' });
      await pub.cast('incr');
      await waitFor(async () => (await consumer.call('get')) === 1);
      expect((await consumer.deadLetters()).map((d) => d.msg)).toEqual([{ type: 'unknown' }]);
    });

    test('a handler that returns a non-helper value is BAD_RETURN naming the handler', async () => {
      const ref = await Runtime.start(Poison, undefined, { tenant });
      await expect(ref.call('wrong')).rejects.toMatchObject({
        code: 'BAD_RETURN',
        message: expect.stringContaining('Poison.wrong returned number 42'),
      });
    });

    test('a handler that changes its state in place fails clearly and stores nothing', async () => {
      const ref = await Runtime.start(Poison, undefined, { tenant, maxAttempts: 1 });
      await ref.cast('mutate');
      await waitFor(async () => (await ref.deadLetters()).length === 1);
      expect((await ref.deadLetters())[0].error).toMatch(/frozen/);
      expect(await ref.call('get')).toEqual({ handled: [] });
    });

    test('info with no @OnInfo is dropped and reported', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant });
      const dropped = firstValueFrom(ref.events$.pipe(filter((e) => e.type === 'dropped')));
      ref.send({ type: 'whatever' });
      expect(await dropped).toEqual({ type: 'dropped', kind: 'info', msg: { type: 'whatever' } });
    });

    test('a call to a consume:false server times out, and its effect is applied once a consumer starts', async () => {
      const pub = await Runtime.start(Counter, {}, { tenant, consume: false, callTimeout: 100 });
      await expect(pub.call('incr')).rejects.toMatchObject({ code: 'CALL_TIMEOUT' });
      expect(await pub.queueLength()).toBe(1);
      const consumer = await Runtime.start(Counter, {}, { tenant });
      await waitFor(async () => (await consumer.queueLength()) === 0);
      expect(await consumer.call('get')).toBe(1);
      const leftovers = await tenant.read((tx) => tx.getRange(Buffer.from([0x00]), Buffer.from([0xff])));
      // the timed-out caller's from-key was cleared, so the consumer wrote no reply
      expect(leftovers.some((kv) => kv.key.includes(Buffer.from('w\x00')))).toBe(false);
    });

    test('a noreply call waits until its timeout, as gen_server', async () => {
      const ref = await Runtime.start(Counter, {}, { tenant });
      await expect(ref.call('silent', { timeout: 50 })).rejects.toMatchObject({ code: 'CALL_TIMEOUT' });
    });
  });
});

describe('definition and option errors', () => {
  test('TENANT_REQUIRED', async () => {
    await expect(Runtime.start(Counter, {}, {} as never)).rejects.toMatchObject({ code: 'TENANT_REQUIRED' });
  });

  test('a class without @DurableServer', async () => {
    class Plain {}
    await expect(Runtime.start(Plain, {}, {} as never)).rejects.toMatchObject({
      code: 'BAD_DEFINITION',
      message: expect.stringContaining('@DurableServer'),
    });
  });

  test('two handlers for one tag', async () => {
    @DurableServer()
    class Twice {
      @OnCall('a') a() {
        return reply(1, 1);
      }
      @OnCall('a') b() {
        return reply(1, 1);
      }
    }
    await expect(Runtime.start(Twice, {}, {} as never)).rejects.toMatchObject({
      code: 'BAD_DEFINITION',
      message: expect.stringContaining('two @OnCall handlers for tag "a"'),
    });
  });

  test('a decorator on a non-method', async () => {
    @DurableServer()
    class Prop {
      // TypeScript already rejects this at compile time; plain JS (or a cast) reaches the runtime check.
      @(OnCast('x') as any) notAMethod = 3;
    }
    await expect(Runtime.start(Prop, {}, {} as never)).rejects.toMatchObject({
      code: 'BAD_DEFINITION',
      message: expect.stringContaining('not a method'),
    });
  });

  test('bad options', async () => {
    const backend = await (await import('../../src/backend/open-backend')).openBackend('memory:');
    const tenant = await backend.openTenant(['x']);
    await expect(Runtime.start(Counter, {}, { tenant, callTimeout: -1 })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    });
    for (const maxBatch of [0, 1.5, 1001, '4'])
      await expect(
        Runtime.start(Counter, {}, { tenant, maxBatch: maxBatch as number }),
      ).rejects.toMatchObject({
        code: 'BAD_ARGUMENT',
        message: expect.stringContaining('maxBatch'),
      });
    const ref = await Runtime.start(Counter, {}, { tenant });
    await expect(ref.call('get', { timeout: 0 })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ref.castMany('x' as never)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await ref.stop();
    await backend.close();
  });
});
