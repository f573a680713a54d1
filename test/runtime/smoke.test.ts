import 'reflect-metadata';
import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import { DurableServer, Init, OnCall, OnCast } from '../../src/decorators';
import { ok, reply, noreply } from '../../src/returns';
import { Runtime } from '../../src/facade/runtime';

@DurableServer({ name: 'smoke' })
class Counter {
  @Init() init(n: number) {
    return ok(n ?? 0);
  }
  @OnCall('get') get(_m: unknown, _f: unknown, n: number) {
    return reply(n, n);
  }
  @OnCast('add') add(m: { by: number }, n: number) {
    return noreply(n + m.by);
  }
}

test('smoke', async () => {
  const backend = new MemoryBackend();
  const tenant = await backend.openTenant(['t']);
  const ref = await Runtime.start(Counter, 0, { tenant });
  await ref.cast({ type: 'add', by: 2 });
  await ref.cast({ type: 'add', by: 3 });
  expect(await ref.call('get')).toBe(5);
  const pub = await Runtime.start(Counter, 0, { tenant, consume: false });
  await pub.cast({ type: 'add', by: 1 });
  expect(await pub.call('get')).toBe(6);
  await Runtime.stopAll();
  await backend.close();
});
