/**
 * FdbBackend's own logic (tenant prefixes, the retry loop, versionstamp offsets, watch re-checks,
 * limits and error translation) under the whole contract suite, over a simulated FoundationDB client
 * (test/helpers/backend/fake-fdb.ts). The real thing runs in conformance.test.ts when
 * FDB_CLUSTER_FILE is set.
 */
import { openBackend } from '../../src/backend/open-backend';
import { FdbBackend } from '../../src/backend/fdb/fdb-backend';
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
