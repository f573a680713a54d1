import 'reflect-metadata';
import { Runtime } from '../../src/facade/runtime';
import { VirtualClock } from '../../src/testing';
import { freshTenantEachTest, runtimeBackends } from '../runtime/backends';
import { Alarm, type AlarmState } from './fixtures';

describe.each(runtimeBackends)('a VirtualClock drives timers and idle timeouts on %s', (_name, make) => {
  const fx = freshTenantEachTest(make, 'vclock');

  test('a timer fires when time reaches its due, not a millisecond before', async () => {
    const clock = new VirtualClock();
    const ref = await Runtime.start(Alarm, 'v1', { tenant: fx.tenant, clock });
    await ref.call({ type: 'arm', ms: 60 * 60_000, tag: 'hour' });
    await ref.castAfter(60_000, { type: 'fire', tag: 'minute' });
    expect((await ref.timers()).map((t) => t.due - clock.now())).toEqual([60_000, 60 * 60_000]);
    await clock.advance(59_999);
    expect((await ref.call<AlarmState>('get')).fired).toEqual([]);
    await clock.advance(1);
    expect((await ref.call<AlarmState>('get')).fired).toEqual(['minute']);
    await clock.advance(60 * 60_000);
    expect((await ref.call<AlarmState>('get')).fired).toEqual(['minute', 'hour']);
    expect(await ref.timers()).toEqual([]);
  });

  test('the idle timeout fires after exactly its ms of silence', async () => {
    const clock = new VirtualClock();
    const ref = await Runtime.start(Alarm, 'v2', { tenant: fx.tenant, clock });
    await ref.call({ type: 'touch', ms: 30_000 });
    await clock.advance(29_999);
    await ref.call({ type: 'touch', ms: 30_000 }); // a message: the silence starts again
    await clock.advance(29_999);
    expect(((await ref.readState()) as AlarmState).timeouts).toBe(0);
    await clock.advance(1);
    expect((await ref.call<AlarmState>('get')).timeouts).toBe(1);
    await clock.advance(120_000);
    expect((await ref.call<AlarmState>('get')).timeouts).toBe(1);
  });

  test('1,000 pending timers over 10 servers: one scheduled wake-up, all fire in due order', async () => {
    const clock = new VirtualClock();
    const refs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => Runtime.start(Alarm, `many${i}`, { tenant: fx.tenant, clock })),
    );
    for (const [i, ref] of refs.entries())
      for (let j = 99; j >= 0; j--) await ref.castAfter(1_000 + j * 10 + i, { type: 'fire', tag: String(j) });
    expect(clock.scheduled).toBe(1);
    await clock.advance(2_100);
    for (const ref of refs) {
      const s = await ref.call<AlarmState>('get');
      expect(s.fired).toEqual(Array.from({ length: 100 }, (_, j) => String(j)));
    }
    expect(clock.scheduled).toBe(0);
  }, 60_000);
});
