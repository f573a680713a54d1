import { FaultyBackend } from '../../src/backend/faulty/faulty-backend';
import { pack } from '../../src/backend/keys';
import { MemoryBackend } from '../../src/backend/memory/memory-backend';
import type { Tenant } from '../../src/backend/types';

const le = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(n);
  return b;
};

describe('FaultyBackend', () => {
  let inner: MemoryBackend;
  beforeEach(() => {
    inner = new MemoryBackend();
  });
  afterEach(() => inner.close());

  /** Increments a counter `n` times, counting how often the body ran. */
  async function increments(tenant: Tenant, n: number): Promise<number> {
    let runs = 0;
    for (let i = 0; i < n; i++)
      await tenant.transact(async (tx) => {
        runs++;
        const v = await tx.get(pack(['n']));
        tx.set(pack(['n']), le((v ? v.readBigInt64LE(0) : 0n) + 1n));
        tx.add(pack(['adds']), 1);
      });
    return runs;
  }

  test.each(['before', 'after', 'both'] as const)(
    'faults %s the body are retried and leave no trace',
    async (when) => {
      const faulty = new FaultyBackend(inner, { commitFailureRate: 0.3, when, seed: 7 });
      const tenant = await faulty.openTenant(['f']);
      const runs = await increments(tenant, 200);
      const read = (key: string) => tenant.read((tx) => tx.get(pack([key])));
      expect(await read('n')).toEqual(le(200n));
      expect(await read('adds')).toEqual(le(200n));
      expect(faulty.injectedFaults).toBeGreaterThan(30);
      if (when === 'before') expect(faulty.faults).toEqual({ before: faulty.injectedFaults, after: 0 });
      if (when === 'after') expect(faulty.faults).toEqual({ before: 0, after: faulty.injectedFaults });
      if (when === 'both') expect(faulty.faults.before * faulty.faults.after).toBeGreaterThan(0);
      // The body ran once per attempt that got as far as the body.
      expect(runs).toBe(200 + faulty.faults.after);
    },
  );

  test('the same seed injects the same faults', async () => {
    const counts = [];
    for (let i = 0; i < 2; i++) {
      const faulty = new FaultyBackend(new MemoryBackend(), { commitFailureRate: 0.5, seed: 1234 });
      await increments(await faulty.openTenant(['f']), 50);
      counts.push({ ...faulty.faults });
      await faulty.close();
    }
    expect(counts[0]).toEqual(counts[1]);
  });

  test('rate 1 fails every attempt: the conflict surfaces once maxRetries is spent', async () => {
    const faulty = new FaultyBackend(inner, { commitFailureRate: 1, when: 'after' });
    const tenant = await faulty.openTenant(['f']);
    await expect(
      tenant.transact((tx) => tx.set(pack(['a']), Buffer.from('1')), { maxRetries: 3 }),
    ).rejects.toMatchObject({
      code: 'TRANSACTION_CONFLICT',
    });
    expect(faulty.injectedFaults).toBe(4);
    expect(await tenant.read((tx) => tx.get(pack(['a'])))).toBeUndefined();
  });

  test('rate 0 changes nothing; reads, tenants and kind pass through', async () => {
    const faulty = new FaultyBackend(inner, { commitFailureRate: 0 });
    expect(faulty.kind).toBe('memory');
    const tenant = await faulty.openTenant(['f']);
    expect(tenant.path).toEqual(['f']);
    expect(tenant.backend).toBe(faulty);
    await increments(tenant, 10);
    expect(faulty.injectedFaults).toBe(0);
    const watch = await tenant.watch(pack(['n']));
    await tenant.transact((tx) => tx.add(pack(['n']), 1));
    expect(await watch.changed).toBe(true);
    await faulty.removeTenant(['f']);
    expect(await tenant.read((tx) => tx.get(pack(['n'])))).toBeUndefined();
  });

  test('bad options are BAD_ARGUMENT', () => {
    expect(() => new FaultyBackend(inner, { commitFailureRate: 2 })).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    );
    expect(() => new FaultyBackend(inner, { commitFailureRate: 0.1, when: 'never' as 'before' })).toThrow(
      expect.objectContaining({ code: 'BAD_ARGUMENT' }),
    );
  });
});
