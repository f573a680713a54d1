/**
 * Outbox casts and timers under the fault-injecting backend: a third of transaction attempts fail with
 * a retryable conflict, before or after their body ran (and the handler runs again). The target must
 * still get each message exactly once, and each timer must fire exactly once.
 */
import 'reflect-metadata';
import { FaultyBackend } from '../../src/backend/faulty/faulty-backend';
import { Runtime } from '../../src/facade/runtime';
import { runtimeBackends, waitFor } from '../runtime/backends';
import { Alarm, type AlarmState } from './fixtures';

describe.each(runtimeBackends)('outbox casts survive retried transactions on %s', (_name, make) => {
  afterEach(() => Runtime.stopAll());

  test('every sending transaction retried at random: each message arrives exactly once', async () => {
    const { backend: inner, cleanup } = await make();
    const backend = new FaultyBackend(inner, { commitFailureRate: 0.33, when: 'both', seed: 7 });
    try {
      const tenant = await backend.openTenant(['outbox-faults']);
      const sender = await Runtime.start(Alarm, 'sender', { tenant });
      const target = await Runtime.start(Alarm, 'target', { tenant });
      const n = 30;
      for (let i = 0; i < n; i++) {
        if (i % 2 === 0) await sender.call({ type: 'tell', to: target.tuid, tag: `m${i}` });
        else await sender.cast({ type: 'tell', to: target.tuid, tag: `m${i}` });
      }
      for (let i = 0; i < 10; i++)
        await tenant.transact(async (tx) => {
          tx.set(Buffer.from(`side-${i}`), Buffer.from('x'));
          await target.castIn(tx, { type: 'fire', tag: `in${i}` });
        });
      const expected = [
        ...Array.from({ length: n }, (_, i) => `m${i}`),
        ...Array.from({ length: 10 }, (_, i) => `in${i}`),
      ];
      const got = async () => ((await target.readState()) as AlarmState).fired;
      await waitFor(async () => (await got()).length >= expected.length, 30_000);
      // the sender's own timers (ctx.castAfter in the same handler) fired once each too
      const later = async () =>
        ((await sender.readState()) as AlarmState).fired.filter((f) => f.startsWith('later:'));
      await waitFor(async () => (await later()).length >= n - 1, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      expect([...(await got())].sort()).toEqual([...expected].sort());
      expect((await later()).length).toBe(n);
      expect(new Set(await later()).size).toBe(n);
      expect(backend.injectedFaults).toBeGreaterThan(20);
    } finally {
      await Runtime.stopAll();
      await cleanup();
    }
  }, 90_000);
});
