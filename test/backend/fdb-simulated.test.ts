/**
 * FdbBackend's own logic (tenant prefixes, the retry loop, versionstamp offsets, watch re-checks,
 * limits and error translation) under the whole contract suite, over a simulated FoundationDB client
 * (test/helpers/backend/fake-fdb.ts). The real thing runs in conformance.test.ts when
 * FDB_CLUSTER_FILE is set.
 */
import { openBackend } from '../../src/backend/open-backend';
import { FdbBackend } from '../../src/backend/fdb/fdb-backend';
import { pack } from '../../src/backend/keys';
import { LIMITS, type Backend, type Tenant } from '../../src/backend/types';
import { sleep, uniquePath } from '../helpers/backend/factories';
import { describeContract } from './contract-suite';

jest.mock('foundationdb', () => jest.requireActual('../helpers/backend/fake-fdb'));

describeContract({
  name: 'fdb (simulated client)',
  async open() {
    const backend = await openBackend('fdb:');
    expect(backend).toBeInstanceOf(FdbBackend);
    return { backend, cleanup: () => backend.close() };
  },
});

/**
 * Where FdbBackend once behaved differently on FoundationDB than the contract promises; the fake
 * mirrors the real package's behaviour in each case (see the comments in fake-fdb.ts).
 */
describe('FdbBackend on FoundationDB semantics (simulated client)', () => {
  const fake = jest.requireActual<typeof import('../helpers/backend/fake-fdb')>(
    '../helpers/backend/fake-fdb',
  );
  const k = (s: string) => pack([s]);
  let backend: Backend;
  let tenant: Tenant;

  beforeEach(async () => {
    backend = await openBackend('fdb:');
    tenant = await backend.openTenant(uniquePath('semantics'));
  });
  afterEach(async () => {
    fake.currentCluster().commitDelayMs = 0;
    fake.currentCluster().readWindowMs = Infinity;
    await backend.close();
  });

  test('a commit in flight when the time limit passes is not cancelled (it may land anyway)', async () => {
    fake.currentCluster().commitDelayMs = 80;
    const outcome = await tenant
      .transact((tx) => tx.set(k('late'), Buffer.from('v')), { timeoutMs: 20 })
      .then(
        () => 'committed',
        (err: { code?: string }) => err.code,
      );
    fake.currentCluster().commitDelayMs = 0;
    const stored = await tenant.read((tx) => tx.get(k('late')));
    // Whatever transact reports must be true: TRANSACTION_TIMED_OUT promises nothing was committed.
    if (outcome === 'committed') expect(stored?.toString()).toBe('v');
    else expect(stored).toBeUndefined();
    expect(outcome).toBe('committed');
  });

  test('getVersionstamp of a transaction whose only write is an empty clearRange', async () => {
    const stamp = await tenant
      .transact((tx) => {
        tx.clearRange(k('b'), k('a'));
        return { p: tx.getVersionstamp() };
      })
      .then((r) => r.p);
    expect(stamp).toHaveLength(10);
  });

  test('a key within the limit but not with the tenant prefix is KEY_TOO_LARGE at the call', async () => {
    const key = Buffer.alloc(LIMITS.keyBytes, 7); // accepted by the memory and SQLite backends
    const thrown: string[] = [];
    const attempt = (op: () => void) => {
      try {
        op();
      } catch (err) {
        thrown.push((err as { code: string }).code);
      }
    };
    await tenant.transact((tx) => {
      attempt(() => tx.set(key, Buffer.from('v')));
      attempt(() => tx.add(key, 1));
      attempt(() => tx.setVersionstampedValue(key));
      tx.clear(key); // nothing so long can exist: a no-op, as on FoundationDB
    });
    expect(thrown).toEqual(['KEY_TOO_LARGE', 'KEY_TOO_LARGE', 'KEY_TOO_LARGE']);
  });

  test('a read that outlives FoundationDB’s read window fails instead of retrying forever', async () => {
    fake.currentCluster().readWindowMs = 5;
    let attempts = 0;
    await expect(
      tenant.read(async (tx) => {
        attempts++;
        await sleep(8);
        return tx.get(k('x'));
      }),
    ).rejects.toMatchObject({ code: 1007 });
    expect(attempts).toBe(101);
  }, 20_000);

  test('a watch whose transaction commits after close() is released (resolves false)', async () => {
    const watch = await tenant.transact(async (tx) => {
      const w = tx.watch(k('w'));
      await backend.close();
      return w;
    });
    expect(await Promise.race([watch.changed, sleep(500).then(() => 'pending')])).toBe(false);
  });
});

describe('FoundationDB API version', () => {
  const fake = jest.requireActual<typeof import('../helpers/backend/fake-fdb')>(
    '../helpers/backend/fake-fdb',
  );
  /** A fresh load-fdb (it caches the module it loaded) over a client with no API version chosen. */
  const freshLoader = () => {
    fake.resetAPIVersion();
    let load!: typeof import('../../src/backend/fdb/load-fdb');
    jest.isolateModules(() => {
      load = jest.requireActual('../../src/backend/fdb/load-fdb');
    });
    return load;
  };
  afterAll(() => fake.resetAPIVersion());

  test('a version the application already chose is kept from 520 on', async () => {
    const load = freshLoader();
    fake.setAPIVersion(610);
    await expect(load.loadFoundationDb()).resolves.toBeDefined();
  });

  test('below 520 (2-byte versionstamp offsets) it is BACKEND_UNAVAILABLE', async () => {
    const load = freshLoader();
    fake.setAPIVersion(510);
    await expect(load.loadFoundationDb()).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  });

  test('otherwise dgen-ts chooses 620', async () => {
    const load = freshLoader();
    await load.loadFoundationDb();
    expect(() => fake.setAPIVersion(620)).not.toThrow();
  });
});
