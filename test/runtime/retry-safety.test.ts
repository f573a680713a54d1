import 'reflect-metadata';
import { FaultyBackend } from '../../src/backend/faulty/faulty-backend';
import { Runtime } from '../../src/facade/runtime';
import { Counter } from './fixtures';
import { runtimeBackends, waitFor } from './backends';

describe.each(runtimeBackends)('handlers are retry-safe on %s', (_name, make) => {
  afterEach(() => Runtime.stopAll());

  test('20% of commits fail with a retryable conflict, and the final state is still exact', async () => {
    const { backend: inner, cleanup } = await make();
    const backend = new FaultyBackend(inner, { commitFailureRate: 0.2, when: 'both', seed: 42 });
    try {
      const tenant = await backend.openTenant(['faulty']);
      const consumer = await Runtime.start(Counter, {}, { tenant });
      const producer = await Runtime.start(Counter, {}, { tenant, consume: false });
      for (let i = 0; i < 100; i++) await producer.cast('incr');
      for (let i = 0; i < 20; i++) await consumer.call('incr');
      await waitFor(async () => (await consumer.queueLength()) === 0, 20_000);
      expect(await consumer.call('get')).toBe(120);
      expect(backend.injectedFaults).toBeGreaterThan(20);
    } finally {
      await Runtime.stopAll();
      await cleanup();
    }
  });
});
